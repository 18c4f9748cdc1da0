"""Our TV-L1 optical flow in TensorFlow, compiled with XLA: one pair per core on a CPU, batched
over frame pairs on a GPU.

The dual TV-L1 scheme of Zach, Pock & Bischof (2007) as OpenCV's DualTVL1 implements it: image
pyramid, coarse-to-fine warping, primal-dual iterations with a per-pair stopping rule and a 5x5
median filter on the flow. It runs on the GPU when TensorFlow sees one.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import function_pb2
from tensorflow.python.eager import context

from i3d._util import cpu
from i3d.inputs.settings import TVL1Params


def tvl1_flow(first: np.ndarray, second: np.ndarray, params: TVL1Params,
              batch: int | None = None,
              done: Callable[[int], object] = lambda pairs: None) -> np.ndarray:
  """Flow (N, H, W, 2) from uint8 images `first` (N, H, W) to `second`.

  Runs `batch` pairs per call (default: `default_batch()`), on one thread per CPU core when
  each call holds one pair, and calls `done(pairs)` as calls finish. The last batch is padded
  with repeated pairs so every call has one shape: one compilation per frame size.
  """
  batch = batch or default_batch()
  count = len(first)
  pad = -count % batch
  first, second = (np.concatenate([x, np.repeat(x[-1:], pad, axis=0)]) for x in (first, second))
  tvl1 = _compiled(params, (batch, *first.shape[1:]))

  def call(i: int) -> np.ndarray:
    return tvl1(tf.constant(first[i:i + batch], tf.float32),
                tf.constant(second[i:i + batch], tf.float32)).numpy()

  fields = []
  with ThreadPoolExecutor(cpu.cores() if batch == 1 else 1) as pool:
    for field in pool.map(call, range(0, count, batch)):
      fields.append(field)
      done(min(batch, count - batch * (len(fields) - 1)))
  return np.concatenate(fields)[:count]


def default_batch() -> int:
  """Pairs per call: 8 on a GPU (one batched call fills it); 1 on a CPU, where one pair per core
  at a time runs faster than batches (the per-pair state stays in cache, no pair waits for the
  slowest of its batch: BENCHMARKS.md)."""
  return 8 if tf.config.list_physical_devices("GPU") else 1


def pyramid_sizes(height: int, width: int, params: TVL1Params) -> list[tuple[int, int]]:
  """(height, width) per pyramid level, finest first; OpenCV drops levels under 16 pixels."""
  sizes = [(height, width)]
  for _ in range(1, params.scales):
    h, w = (round(s * params.scale_step) for s in sizes[-1])
    if h < 16 or w < 16:
      break
    sizes.append((h, w))
  return sizes


@functools.lru_cache(maxsize=8)
def _compiled(params: TVL1Params, shape: tuple[int, int, int]) -> Callable[..., tf.Tensor]:
  """The TV-L1 for image batches of `shape` (B, H, W), under a name that is the same in every
  process, so TensorFlow's persistent XLA cache (`env.xla_cache_dir`) finds it after the first."""
  spec = tf.TensorSpec(shape, tf.float32)
  concrete = _tvl1_graph(params, shape[1:]).get_concrete_function(spec, spec)
  digest = hashlib.sha256(repr((params, shape)).encode()).hexdigest()[:16]
  tvl1 = _stable_function(concrete, f"i3d_tvl1_{digest}")
  try:  # the first call compiles, or loads the program from the cache
    tvl1(tf.zeros(shape), tf.zeros(shape))
  except tf.errors.OpError:
    # An unreadable cache entry (one torn by a process killed while writing it) fails the load;
    # under another name the program is compiled, and cached, afresh.
    tvl1 = _stable_function(concrete, f"i3d_tvl1_{digest}_recompiled")
  return tvl1


def _stable_function(concrete, prefix: str) -> Callable[..., tf.Tensor]:
  """`concrete` (one output) registered under names `prefix`_0, _1, ... instead of TensorFlow's.

  TensorFlow names a traced function and its loop bodies with a process-wide counter, and the
  persistent XLA cache keys on those names; renaming them in trace order makes the key stable.
  """
  library = {f.signature.name: f for f in concrete.graph.as_graph_def().library.function}
  library[concrete.function_def.signature.name] = concrete.function_def
  counter = lambda name: int(re.sub(r"^.*?(\d*)$", r"0\1", name))
  names = {name: f"{prefix}_{i}" for i, name in enumerate(sorted(library, key=counter))}
  ctx = context.context()
  for name, fdef in library.items():
    fdef = function_pb2.FunctionDef.FromString(fdef.SerializeToString())
    fdef.signature.name = names[name]
    for attr in [*fdef.attr.values(), *(a for node in fdef.node_def for a in node.attr.values())]:
      for func in [*attr.list.func, *([attr.func] if attr.HasField("func") else [])]:
        func.name = names.get(func.name, func.name)
    if not ctx.has_function(fdef.signature.name):
      ctx.add_function_def(fdef)
  top = names[concrete.function_def.signature.name].encode()
  return lambda *args: ctx.call_function(top, list(args), 1)[0]


def _tvl1_graph(params: TVL1Params, shape: tuple[int, int]):
  """A TV-L1 for image pairs of `shape`, batched over pairs, compiled with XLA."""

  @tf.function(jit_compile=True)
  def tvl1(i0: tf.Tensor, i1: tf.Tensor) -> tf.Tensor:
    sizes = pyramid_sizes(*shape, params)
    levels = [(i0, i1)]  # each level's pair of images, finest first
    for size in sizes[1:]:
      levels.append(tuple(_resize(x, size, params.scale_step) for x in levels[-1]))
    u = tf.zeros(tf.concat([tf.shape(i0)[:1], sizes[-1], [2]], 0), tf.float32)
    for level in reversed(range(len(sizes))):
      if level < len(sizes) - 1:
        u = _upsample_flow(u, sizes[level], params.scale_step)
      u = _one_scale(*levels[level], u, params)
    return u

  return tvl1


def _resize(images: tf.Tensor, size: tuple[int, int], scale: float) -> tf.Tensor:
  """Bilinear resize of (B, H, W) images by `scale` as OpenCV's `resize(fx=fy=scale)` maps it.

  OpenCV samples source (i + 0.5) / scale - 0.5, not the exact size ratio; matching it keeps
  our pyramid pixel-aligned with the reference's.
  """
  rows = _interpolation_matrix(images.shape[1], size[0], scale)
  cols = _interpolation_matrix(images.shape[2], size[1], scale)
  return tf.einsum("bhw,Hh,Ww->bHW", images, rows, cols)


def _interpolation_matrix(source: int, target: int, scale: float) -> tf.Tensor:
  """(target, source) linear-interpolation weights of OpenCV's INTER_LINEAR along one axis."""
  position = (np.arange(target) + 0.5) / scale - 0.5
  low = np.floor(position).astype(int)
  frac = position - low
  frac[low < 0], low[low < 0] = 0.0, 0
  frac[low >= source - 1], low[low >= source - 1] = 0.0, source - 1
  matrix = np.zeros((target, source), np.float32)
  matrix[np.arange(target), low] += 1 - frac
  matrix[np.arange(target), np.minimum(low + 1, source - 1)] += frac
  return tf.constant(matrix)


def _upsample_flow(u: tf.Tensor, size: tuple[int, int], scale: float) -> tf.Tensor:
  """Flow (B, h, w, 2) -> (B, H, W, 2): bilinear resize, values divided by the pyramid `scale`."""
  return tf.image.resize(u, size, method="bilinear") / scale


def _centered_gradient(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Central differences of (B, H, W) with replicated borders: (d/dx, d/dy)."""
  padded = tf.pad(image, [[0, 0], [1, 1], [1, 1]], mode="SYMMETRIC")
  dx = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) / 2
  dy = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) / 2
  return dx, dy


def _forward_gradient(u: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Forward differences of (B, H, W), zero on the last column / row."""
  dx = tf.pad(u[:, :, 1:] - u[:, :, :-1], [[0, 0], [0, 0], [0, 1]])
  dy = tf.pad(u[:, 1:] - u[:, :-1], [[0, 0], [0, 1], [0, 0]])
  return dx, dy


def _divergence(px: tf.Tensor, py: tf.Tensor) -> tf.Tensor:
  """Backward-difference divergence of (B, H, W) planes, the negative adjoint of the gradient."""
  dx = px - tf.pad(px[:, :, :-1], [[0, 0], [0, 0], [1, 0]])
  dy = py - tf.pad(py[:, :-1], [[0, 0], [1, 0], [0, 0]])
  return dx + dy


def _cubic_weights(t: tf.Tensor) -> list[tf.Tensor]:
  """Keys cubic convolution weights (a = -0.75, as OpenCV's INTER_CUBIC) for taps -1, 0, 1, 2."""
  a = -0.75
  w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
  w1 = ((a + 2) * t - (a + 3)) * t * t + 1
  w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
  return [w0, w1, w2, 1 - w0 - w1 - w2]


def _warp(images: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
  """Bicubic samples of images (B, H, W, C) at (x + u, y + v); taps outside the image read 0.

  As OpenCV's DualTVL1 warps (remap, INTER_CUBIC, BORDER_CONSTANT): bilinear sampling biases
  sub-pixel flow on fine texture, and zeros make the L1 data term drop pixels that left the image.
  """
  shape = tf.shape(images)
  b, h, w = shape[0], shape[1], shape[2]
  ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32), indexing="ij")
  x, y = xs + u[..., 0], ys + u[..., 1]
  x0, y0 = tf.floor(x), tf.floor(y)
  wx, wy = _cubic_weights((x - x0)[..., None]), _cubic_weights((y - y0)[..., None])
  x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
  taps_x = [_tap(x0 + i, w, weight) for i, weight in zip((-1, 0, 1, 2), wx)]
  taps_y = [_tap(y0 + i, h, weight) for i, weight in zip((-1, 0, 1, 2), wy)]
  flat = tf.reshape(images, [b * h * w, -1])
  base = (tf.range(b) * h * w)[:, None, None]
  out = 0.0
  for row, weight_y in taps_y:
    line = sum(tf.gather(flat, base + row * w + col) * weight_x for col, weight_x in taps_x)
    out += line * weight_y
  return out


def _tap(index: tf.Tensor, size: tf.Tensor, weight: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """(index clamped into [0, size), weight zeroed where the index is outside the image)."""
  inside = tf.logical_and(index >= 0, index < size)[..., None]
  return tf.clip_by_value(index, 0, size - 1), tf.where(inside, weight, 0.0)


def _median(u: tf.Tensor, size: int) -> tf.Tensor:
  """Median filter of (B, H, W, C) over `size` x `size` windows, borders mirrored.

  A pruned sorting network of min/max ops: XLA fuses it, where a sort per pixel is slow on CPU.
  """
  r = size // 2
  padded = tf.pad(u, [[0, 0], [r, r], [r, r], [0, 0]], mode="SYMMETRIC")
  h, w = tf.shape(u)[1], tf.shape(u)[2]
  wires = [padded[:, i:i + h, j:j + w] for i in range(size) for j in range(size)]
  for kind, a, b in _median_network(len(wires)):
    if kind == "swap":
      wires[a], wires[b] = wires[b], wires[a]
    else:
      wires[a], wires[b] = tf.minimum(wires[a], wires[b]), tf.maximum(wires[a], wires[b])
  return wires[len(wires) // 2]


def _batcher_network(n: int) -> list[tuple[int, int]]:
  """Batcher's odd-even merge sort comparators (low, high) for `n` (a power of two) wires."""
  pairs, p = [], 1
  while p < n:
    k = p
    while k >= 1:
      for j in range(k % p, n - k, 2 * k):
        for i in range(min(k, n - j - k)):
          if (i + j) // (2 * p) == (i + j + k) // (2 * p):
            pairs.append((i + j, i + j + k))
      k //= 2
    p *= 2
  return pairs


@functools.cache
def _median_network(count: int) -> tuple[tuple[str, int, int], ...]:
  """The comparators of a sorting network for `count` wires that the middle output depends on.

  Wires are padded to a power of two with +inf (comparators against them become swaps or
  vanish), then comparators that cannot reach the median wire are pruned.
  """
  size = 1 << (count - 1).bit_length()
  infinite, ops = set(range(count, size)), []
  for a, b in _batcher_network(size):
    if b in infinite:
      continue
    if a in infinite:
      ops.append(("swap", a, b))
      infinite.symmetric_difference_update({a, b})
    else:
      ops.append(("cmp", a, b))
  needed, kept = {count // 2}, []
  for op in reversed(ops):
    kind, a, b = op
    if needed & {a, b}:
      kept.append(op)
      needed = needed | {a, b} if kind == "cmp" else {({a: b, b: a}).get(w, w) for w in needed}
  return tuple(reversed(kept))


def _one_scale(i0: tf.Tensor, i1: tf.Tensor, u: tf.Tensor, params: TVL1Params) -> tf.Tensor:
  """Refine flow `u` (B, H, W, 2) on one pyramid level: warps x (median, primal-dual iterations).

  Inside, every field is its own (B, H, W) plane (u1, u2, p11, p12, p21, p22): with the width
  as the minor axis XLA vectorises the loops, where a trailing axis of 2 or 4 defeats it.
  """
  height, width = i0.shape[1], i0.shape[2]
  stop = params.epsilon ** 2 * height * width
  i1x, i1y = _centered_gradient(i1)
  i1_stack = tf.stack([i1, i1x, i1y], -1)
  zeros = tf.zeros_like(i0)

  def warp(n, u1, u2, p):
    warped = _warp(i1_stack, tf.stack([u1, u2], -1))
    data = _DataTerm(warped[..., 1], warped[..., 2], warped[..., 0], u1, u2, i0)
    active = tf.ones(tf.shape(i0)[:1], tf.bool)

    def outer(m, u1, u2, p, active):
      if params.median_filtering > 1:
        u1 = _keep(active, _median(u1[..., None], params.median_filtering)[..., 0], u1)
        u2 = _keep(active, _median(u2[..., None], params.median_filtering)[..., 0], u2)
      return (m + 1, *_inner_loop(u1, u2, p, active, data, params, stop))

    _, u1, u2, p, _ = tf.while_loop(
        lambda m, u1, u2, p, active: tf.logical_and(m < params.outer_iterations,
                                                    tf.reduce_any(active)),
        outer, (tf.constant(0), u1, u2, p, active))
    return n + 1, u1, u2, p

  _, u1, u2, _ = tf.while_loop(lambda n, u1, u2, p: n < params.warps, warp,
                               (tf.constant(0), u[..., 0], u[..., 1], (zeros,) * 4))
  return tf.stack([u1, u2], -1)


class _DataTerm:
  """The linearised data term of one warp: warped gradient, |grad|^2 and the constant of rho."""

  def __init__(self, ix, iy, i1w, u1, u2, i0):
    self.ix, self.iy = ix, iy
    self.grad_sq = ix * ix + iy * iy
    self.rho_c = i1w - ix * u1 - iy * u2 - i0

  def step(self, u1, u2, l_t: float):
    """v = u + the thresholding step TH of the L1 data term (Zach et al., eq. 11)."""
    rho = self.rho_c + self.ix * u1 + self.iy * u2
    eps = np.finfo(np.float32).eps
    scale = tf.where(rho < -l_t * self.grad_sq, l_t,
                     tf.where(rho > l_t * self.grad_sq, -l_t,
                              tf.where(self.grad_sq > eps,
                                       -rho / tf.maximum(self.grad_sq, eps), 0.0)))
    return u1 + scale * self.ix, u2 + scale * self.iy


def _keep(active: tf.Tensor, new: tf.Tensor, old: tf.Tensor) -> tf.Tensor:
  """`new` planes (B, H, W) of the pairs still `active` (B,), `old` ones of the converged.

  A single pair's loop stops when it converges, so it needs no mask (one read less per plane).
  """
  if active.shape[0] == 1:
    return new
  return tf.where(active[:, None, None], new, old)


def _inner_loop(u1, u2, p, active, data: _DataTerm, params: TVL1Params, stop: float):
  """Primal-dual iterations until each pair's squared update sum drops to `stop` (OpenCV's rule)."""
  l_t, taut = params.lambda_ * params.theta, params.tau / params.theta

  def step(n, u1, u2, p, active):
    p11, p12, p21, p22 = p
    v1, v2 = data.step(u1, u2, l_t)
    new1 = v1 + params.theta * _divergence(p11, p12)
    new2 = v2 + params.theta * _divergence(p21, p22)
    error = tf.reduce_sum((new1 - u1) ** 2 + (new2 - u2) ** 2, [1, 2])
    u1x, u1y = _forward_gradient(new1)
    u2x, u2y = _forward_gradient(new2)
    n1 = 1 + taut * tf.sqrt(u1x * u1x + u1y * u1y)
    n2 = 1 + taut * tf.sqrt(u2x * u2x + u2y * u2y)
    new_p = ((p11 + taut * u1x) / n1, (p12 + taut * u1y) / n1,
             (p21 + taut * u2x) / n2, (p22 + taut * u2y) / n2)
    keep = functools.partial(_keep, active)
    return (n + 1, keep(new1, u1), keep(new2, u2), tuple(map(keep, new_p, p)),
            tf.logical_and(active, error > stop))

  _, u1, u2, p, active = tf.while_loop(
      lambda n, u1, u2, p, active: tf.logical_and(n < params.inner_iterations,
                                                  tf.reduce_any(active)),
      step, (tf.constant(0), u1, u2, p, active))
  return u1, u2, p, active

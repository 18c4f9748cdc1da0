"""A fast inference-only I3D built from a loaded `InceptionI3d`, with the same logits.

At build time BatchNorm is folded into the convolution weights and the three 1x1x1 convolutions
that read each Inception block's input (Branch_0, Branch_1 and Branch_2 `Conv3d_0a_1x1`) become
one convolution whose output is split; in bfloat16 on a CPU, an RGB stem reads neighbouring
columns as pairs of channels (`PairedColumnsConv`) and the wide 3x3x3 convolutions use Winograd's
transform along time (`TemporalWinogradConv`). The forward pass is a `tf.function`
(optionally compiled with XLA) over any batch and clip length, and traces inside another
`tf.function`, so it can be exported with `tf.saved_model`. `InceptionI3d` stays the training
and research model.
"""

import functools
from typing import Optional

import numpy as np
import tensorflow as tf

from i3d._util import cpu, progress
from i3d.errors import UserError
from i3d.model import hardware
from i3d.model.network import (
  InceptionBlock,
  InceptionI3d,
  MaxPool3D,
  Unit3D,
  endpoint_range,
  logits_head,
)

PRECISIONS = {name: tf.as_dtype(name) for name in hardware.PRECISIONS}


def precision_dtype(precision: str) -> tf.DType:
  """The dtype of a precision name, or a UserError naming the ones offered."""
  if precision not in PRECISIONS:
    raise UserError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
  return PRECISIONS[precision]


def fold_batch_norm(unit: Unit3D) -> tuple[np.ndarray, np.ndarray]:
  """Weights and bias of one convolution equal to `unit`'s convolution followed by its BatchNorm.

  BN(x) = (x - mean) / sqrt(var + eps) + beta, so w' = w / sqrt(var + eps) (per output channel)
  and b' = beta - mean / sqrt(var + eps); computed in float64 to add no rounding of its own.
  """
  w = unit.conv.w.numpy().astype(np.float64)
  if unit.bn is None:
    b = unit.conv.b.numpy() if unit.conv.with_bias else np.zeros(w.shape[-1])
    return w, np.asarray(b, np.float64)
  bn = unit.bn
  inv_std = 1.0 / np.sqrt(bn.moving_variance.numpy().astype(np.float64) + bn.eps)
  bias = bn.beta.numpy() - bn.moving_mean.numpy() * inv_std
  return w * inv_std, bias


class FusedConv(tf.Module):
  """A 3D convolution (SAME) with folded bias and optional ReLU, weights in `dtype`."""

  def __init__(self, w: np.ndarray, b: np.ndarray, stride: tuple[int, ...] = (1, 1, 1),
               relu: bool = True, dtype: tf.DType = tf.float32, name: Optional[str] = None):
    super().__init__(name=name)
    self.w = tf.Variable(tf.constant(w, dtype), trainable=False, name="w")
    self.b = tf.Variable(tf.constant(b, dtype), trainable=False, name="b")
    self.strides = (1, *stride, 1)
    self.relu = relu

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    y = tf.nn.bias_add(tf.nn.conv3d(x, self.w, self.strides, "SAME"), self.b)
    return tf.nn.relu(y) if self.relu else y


class PairedColumnsConv(FusedConv):
  """A 7-tap, stride-2 SAME convolution along W computed on pairs of neighbouring columns.

  CPUs multiply bfloat16 in pairs of input channels, so the 3 channels of RGB leave a quarter of
  the stem's multiply-adds on padding. Folding each pair of columns into the channels,
  (B, T, H, W, C) -> (B, T, H, W/2, 2C), a free reshape, turns the convolution along W into a
  stride-1, 4-tap one over 2C channels with the same products (the eighth tap is zero): 4x7x7x6
  multiply-adds per output instead of 7x7x7x4 with padding. An odd W gets a zero column in
  front, which keeps SAME's alignment.
  """

  def __init__(self, w: np.ndarray, b: np.ndarray, stride: tuple[int, ...], relu: bool = True,
               dtype: tf.DType = tf.float32, name: Optional[str] = None):
    depth, height, taps, channels, outputs = w.shape
    if taps != 7 or stride[2] != 2:
      raise ValueError(f"PairedColumnsConv needs 7 taps and stride 2 along W, got {taps}, "
                       f"{stride[2]}")
    paired = np.zeros((depth, height, 4, 2 * channels, outputs), w.dtype)
    for tap in range(taps):
      pair, column = divmod(tap, 2)
      paired[:, :, pair, column * channels:(column + 1) * channels] = w[:, :, tap]
    super().__init__(paired, b, (stride[0], stride[1], 1), relu, dtype, name)
    self.channels = channels

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    x = tf.cond(tf.shape(x)[3] % 2 == 0, lambda: x,
                lambda: tf.pad(x, [[0, 0], [0, 0], [0, 0], [1, 0], [0, 0]]))
    shape = tf.shape(x)
    return super().__call__(
        tf.reshape(x, [shape[0], shape[1], shape[2], shape[3] // 2, 2 * self.channels]))


class TemporalWinogradConv(tf.Module):
  """A 3x3x3, stride-1 SAME convolution computed with Winograd's F(2, 3) along time.

  Two neighbouring output frames need 6 products of a frame with a 1x3x3 slice of the kernel
  (g0, g1, g2) directly, and 4 with Winograd's transform: the input tile (d0, d1, d2, d3) of four
  frames becomes (d0 - d2, d1 + d2, d2 - d1, d1 - d3), each convolved over H and W with g0,
  (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2 and g2 into m0..m3, and the outputs are m0 + m1 + m2
  and m1 - m2 - m3. So a third of the multiply-adds go, for frame-wide additions that are
  contiguous in NDHWC. Weights are transformed in float64 and rounded once; the additions round
  in the compute type, which adds rounding of the order of the activations' own.
  """

  def __init__(self, w: np.ndarray, b: np.ndarray, stride: tuple[int, ...] = (1, 1, 1),
               relu: bool = True, dtype: tf.DType = tf.float32, name: Optional[str] = None):
    super().__init__(name=name)
    if w.shape[:3] != (3, 3, 3) or tuple(stride) != (1, 1, 1):
      raise ValueError(f"TemporalWinogradConv needs a 3x3x3 kernel with stride 1, got "
                       f"{w.shape[:3]} with stride {stride}")
    g0, g1, g2 = (np.asarray(w[t:t + 1], np.float64) for t in range(3))
    self.kernels = [tf.Variable(tf.constant(k, dtype), trainable=False, name=f"w{i}")
                    for i, k in enumerate((g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2))]
    self.b = tf.Variable(tf.constant(b, dtype), trainable=False, name="b")
    self.relu = relu

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    shape = tf.shape(x)
    frames, extra = shape[1], shape[1] % 2
    tiles = (frames + extra) // 2
    padded = tf.pad(x, [[0, 0], [1, 1 + extra], [0, 0], [0, 0], [0, 0]])  # SAME, even length
    pairs = tf.reshape(padded, [shape[0], tiles + 1, 2, shape[2], shape[3], shape[4]])
    even, odd = pairs[:, :, 0], pairs[:, :, 1]  # tile j: even[j], odd[j], even[j + 1], odd[j + 1]
    d0, d1, d2, d3 = even[:, :-1], odd[:, :-1], even[:, 1:], odd[:, 1:]
    m0, m1, m2, m3 = (tf.nn.conv3d(u, k, (1,) * 5, "SAME") for u, k in
                      zip((d0 - d2, d1 + d2, d2 - d1, d1 - d3), self.kernels))
    m1 = tf.nn.bias_add(m1, self.b)
    y = tf.stack([m0 + m1 + m2, m1 - m2 - m3], axis=2)  # (B, tiles, 2, H, W, C): frames 2j, 2j+1
    y_shape = tf.shape(y)
    y = tf.reshape(y, [y_shape[0], 2 * tiles, y_shape[3], y_shape[4], y_shape[5]])[:, :frames]
    return tf.nn.relu(y) if self.relu else y


WINOGRAD_MIN_CHANNELS = 64  # below (the Branch_2 3x3x3 convolutions, 16-48 channels) no gain


@functools.cache
def _winograd_here() -> bool:
  """Whether this machine's CPU is one where `TemporalWinogradConv` was measured faster."""
  return hardware.bfloat16_winograd_pays(cpu.cpu_flags())


def _conv_kind(w: np.ndarray, stride: tuple[int, ...], dtype: tf.DType) -> type[tf.Module]:
  """The fastest way here to run a convolution with folded weights `w`, measured on CPUs with
  native bfloat16 (BENCHMARKS.md): `PairedColumnsConv` for an odd number of input channels and
  7 taps with stride 2 along W (the RGB stem), `TemporalWinogradConv` for 3x3x3, stride 1 and at
  least `WINOGRAD_MIN_CHANNELS` input channels on CPUs where it pays, else `FusedConv`."""
  if dtype != tf.bfloat16 or tf.config.list_physical_devices("GPU"):
    return FusedConv
  if w.shape[3] % 2 == 1 and w.shape[2] == 7 and stride[2] == 2:
    return PairedColumnsConv
  if (w.shape[:3] == (3, 3, 3) and tuple(stride) == (1, 1, 1)
      and w.shape[3] >= WINOGRAD_MIN_CHANNELS and _winograd_here()):
    return TemporalWinogradConv
  return FusedConv


def _conv(unit: Unit3D, dtype: tf.DType) -> tf.Module:
  """The fastest equivalent of one `Unit3D` here (see `_conv_kind`)."""
  w, b = fold_batch_norm(unit)
  kind = _conv_kind(w, unit.stride, dtype)
  return kind(w, b, unit.stride, relu=unit.activation_fn is not None, dtype=dtype)


class Float32MaxPool(tf.Module):
  """`pool` computed in float32 and cast back: CPUs have no float16 max-pool kernel (the maximum
  is exact in either type, so the result is the same)."""

  def __init__(self, pool: MaxPool3D):
    super().__init__(name=pool.name)
    self.pool = pool

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    return tf.cast(self.pool(tf.cast(x, tf.float32)), x.dtype)


def _pool(pool: MaxPool3D, dtype: tf.DType) -> tf.Module:
  """`pool` as it runs in `dtype` on this machine's devices."""
  if dtype == tf.float16 and not tf.config.list_physical_devices("GPU"):
    return Float32MaxPool(pool)
  return pool


class FastInceptionBlock(tf.Module):
  """An Inception block with its three input-reading 1x1x1 convolutions fused into one."""

  def __init__(self, block: InceptionBlock, dtype: tf.DType):
    super().__init__()
    parts = [fold_batch_norm(u) for u in (block.branch_0, block.branch_1[0], block.branch_2[0])]
    self.splits = [w.shape[-1] for w, _ in parts]
    self.pointwise = FusedConv(np.concatenate([w for w, _ in parts], axis=-1),
                               np.concatenate([b for _, b in parts]), dtype=dtype)
    self.conv_1 = _conv(block.branch_1[1], dtype)
    self.conv_2 = _conv(block.branch_2[1], dtype)
    self.pool = _pool(block.pool, dtype)
    self.conv_3 = _conv(block.branch_3, dtype)

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    branch_0, reduced_1, reduced_2 = tf.split(self.pointwise(x), self.splits, axis=4)
    return tf.concat([branch_0, self.conv_1(reduced_1), self.conv_2(reduced_2),
                      self.conv_3(self.pool(x))], axis=4)


def precision_warning(precision: str) -> Optional[str]:
  """One line when `precision` would run emulated, slowly, on this machine (no GPU and a CPU
  without native support, see `i3d.model.hardware`); None otherwise."""
  if tf.config.list_physical_devices("GPU"):
    return None
  return hardware.emulation_warning(precision, cpu.cpu_flags())


@functools.cache
def _log_once(message: str) -> None:
  progress.warn(message)


class FastI3d(tf.Module):
  """The output of a loaded `InceptionI3d` in float32, computed faster: logits (B, num_classes)
  (softmax for Predictions), or the features of the endpoint the model ends at.

  `compute_dtype` bfloat16 or float16 runs the convolutions and pooling in that precision (fast
  on GPUs and on CPUs that have it, see `i3d.model.hardware`; `precision_warning` says when it
  would be emulated, and is logged once); inputs, the logits head and the outputs stay float32.
  `jit_compile` compiles the forward pass with XLA.
  """

  def __init__(self, model: InceptionI3d, compute_dtype: tf.DType = tf.float32,
               jit_compile: bool = False, name: Optional[str] = None):
    super().__init__(name=name)
    self.head = "Logits" in model.layers
    if self.head and not model.spatial_squeeze:
      raise ValueError("FastI3d needs an InceptionI3d with spatial_squeeze to compute logits")
    if model.input_channels is None:
      raise ValueError("FastI3d needs a built InceptionI3d (load a checkpoint first)")
    self.compute_dtype = tf.as_dtype(compute_dtype)
    self.precision_warning = precision_warning(self.compute_dtype.name)
    if self.precision_warning:
      _log_once(self.precision_warning)
    self.softmax = model.final_endpoint == "Predictions"
    self.check_input = model._check_input  # a bound method: not tracked, no duplicate weights
    self.endpoints = [e for e in model.layers if e != "Logits"]
    self.layers = [self._layer(model.layers[e]) for e in self.endpoints]
    if self.head:
      self.logits_w, self.logits_b = (tf.Variable(tf.constant(v, tf.float32), trainable=False)
                                      for v in fold_batch_norm(model.units["Logits"]))
    self.forward = tf.function(self._forward, jit_compile=jit_compile, reduce_retracing=True)

  def _layer(self, layer):
    """The fast equivalent of one of the model's layers."""
    if isinstance(layer, MaxPool3D):
      return _pool(layer, self.compute_dtype)
    if isinstance(layer, InceptionBlock):
      return FastInceptionBlock(layer, self.compute_dtype)
    return _conv(layer, self.compute_dtype)

  def _forward(self, clips: tf.Tensor) -> tf.Tensor:
    net = self.backbone(clips)
    if not self.head:
      return net
    logits = self.logits(net)
    return tf.nn.softmax(logits) if self.softmax else logits

  def backbone(self, clips: tf.Tensor, after: Optional[str] = None,
               until: Optional[str] = None) -> tf.Tensor:
    """The layers before the head: Mixed_5c (or the endpoint the model ends at), float32; or
    those after endpoint `after` (`clips` is then its output) up to endpoint `until`."""
    first, last = endpoint_range(self.endpoints, after, until)
    net = tf.cast(clips, self.compute_dtype)
    for layer in self.layers[first:last]:
      net = layer(net)
    return tf.cast(net, tf.float32)

  def logits(self, net: tf.Tensor, space_pooled: bool = False) -> tf.Tensor:
    """The logits head over Mixed_5c (`logits_head`; `space_pooled` as there)."""
    return logits_head(net, lambda x: tf.nn.bias_add(
        tf.nn.conv3d(x, self.logits_w, (1,) * 5, "SAME"), self.logits_b),
        space_pooled=space_pooled)

  def __call__(self, clips) -> tf.Tensor:
    clips = tf.convert_to_tensor(clips, tf.float32)
    self.check_input(clips)
    return self.forward(clips)

"""Optical flow for the I3D flow stream: TV-L1 behind one call, and the flow model input.

Two backends: `opencv`, the contrib DualTVL1 (the reference the released models were trained
with), and `tf`, our own TensorFlow TV-L1 (`i3d.inputs.tvl1`), batched over frame pairs and
compiled with XLA, so it runs on the GPU when TensorFlow sees one.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import cv2
import numpy as np
import tensorflow as tf

from i3d._util import progress
from i3d.errors import UserError
from i3d.inputs import tvl1
from i3d.inputs.settings import FLOW_BACKENDS, FLOW_BOUND, TVL1Params

# Seconds per frame pair with the released settings on a busy 2-core CPU at 256x340 (a 10 s
# clip's 249 pairs took 15.4 min with opencv; tf runs 6.4x as many pairs per second since one
# pair per core: BENCHMARKS.md); the estimate printed before long CPU runs scales it by pixels.
CPU_SECONDS_PER_PAIR = {"opencv": 3.3, "tf": 0.5}
CPU_REFERENCE_PIXELS = 256 * 340
ESTIMATE_ABOVE_SECONDS = 30.0
# How to go faster, said after the estimate: for commands that classify (the default), and for
# `i3d preprocess`, which is itself the way to flow once (`flow_advice`).
CLASSIFY_ADVICE = ("--eval_type rgb (no flow), flow once with `i3d preprocess` (reused from its "
                   ".npz), or a GPU (--flow_backend tf)")
PREPROCESS_ADVICE = ("a GPU (--flow_backend tf), or for a dataset more processes (--workers) or "
                     "machines (--runner)")
_advice = contextvars.ContextVar("flow_advice", default=CLASSIFY_ADVICE)
# (parameters, frame shape) our TV-L1 has prepared in this process.
_prepared: set[tuple[TVL1Params, tuple[int, ...]]] = set()


def compute_flow(frames: np.ndarray | tf.Tensor, backend: str = "tf",
                 params: TVL1Params = TVL1Params(), batch: int | None = None) -> np.ndarray:
  """Flow between consecutive grayscale frames (T, H, W) in [0, 255] -> (T-1, H, W, 2) pixels.

  Channel 0 is horizontal, 1 vertical: frame t at (x, y) matches frame t+1 at (x + u, y + v).
  """
  gray = np.asarray(frames)
  if gray.ndim != 3 or len(gray) < 2:
    raise ValueError(f"need grayscale frames (T >= 2, H, W), got shape {gray.shape}")
  return flow_pairs(gray[:-1], gray[1:], backend, params, batch)


def flow_pairs(first: np.ndarray, second: np.ndarray, backend: str = "tf",
               params: TVL1Params = TVL1Params(), batch: int | None = None,
               show: bool = True) -> np.ndarray:
  """Flow from each image of `first` (N, H, W) to the same-index one of `second`: (N, H, W, 2).

  Images are rounded to uint8 first, so both backends see exactly the same input. `batch`: pairs
  per call of the `tf` backend (default `tvl1.default_batch()`). `show`: the time estimate and
  a progress bar (off where a caller streaming blocks of pairs shows its own).
  """
  first, second = (np.clip(np.rint(np.asarray(x, np.float32)), 0, 255).astype(np.uint8)
                   for x in (first, second))
  if backend not in FLOW_BACKENDS:
    raise UserError(f"unknown flow backend {backend!r}; expected one of "
                    f"{', '.join(FLOW_BACKENDS)}")
  if not len(first):
    return np.zeros((*first.shape, 2), np.float32)
  if show:
    estimate_note(len(first), first.shape[1:], backend)
  with progress.bar(len(first), f"flow ({backend} TV-L1)", "pair", show=show) as bar:
    if backend == "opencv":  # DualTVL1 on each pair (OpenCV's own threads inside each pair)
      solver, fields = opencv_solver(params), []
      for a, b in zip(first, second):
        fields.append(solver.calc(a, b, None))
        bar.update(1)
      return np.stack(fields)
    if (params, first.shape[1:]) not in _prepared:
      progress.note(f"preparing TV-L1 for {first.shape[1]}x{first.shape[2]} (compiled on first "
                    "use, then loaded from the XLA cache)...")
      _prepared.add((params, first.shape[1:]))
    return tvl1.tvl1_flow(first, second, params, batch, bar.update)


@contextlib.contextmanager
def flow_advice(advice: str) -> Iterator[None]:
  """Within the block, the estimate before long CPU flow ends with `faster: ADVICE`."""
  token = _advice.set(advice)
  try:
    yield
  finally:
    _advice.reset(token)


def estimate_note(pairs: int, shape: tuple[int, ...], backend: str) -> None:
  """Before a long flow run on a CPU: roughly how long it takes and how to go faster
  (`flow_advice`)."""
  if backend == "tf" and tf.config.list_physical_devices("GPU"):
    return
  seconds = pairs * CPU_SECONDS_PER_PAIR[backend] * shape[0] * shape[1] / CPU_REFERENCE_PIXELS
  if seconds >= ESTIMATE_ABOVE_SECONDS:
    progress.note(f"optical flow: {pairs} frame pairs at {shape[0]}x{shape[1]} on the CPU take "
                  f"about {_duration(seconds)} (~{CPU_SECONDS_PER_PAIR[backend]:g} s per 256x340 "
                  f"pair); faster: {_advice.get()}")


def _duration(seconds: float) -> str:
  """`45 s`, `12 min`, `1.5 h`."""
  if seconds < 90:
    return f"{seconds:.0f} s"
  return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def normalise_flow(flow: np.ndarray | tf.Tensor) -> tf.Tensor:
  """Flow in pixels -> the released input range: truncated to [-20, 20], rescaled to [-1, 1]."""
  return tf.clip_by_value(tf.cast(flow, tf.float32), -FLOW_BOUND, FLOW_BOUND) / FLOW_BOUND


def opencv_solver(params: TVL1Params):
  """OpenCV's DualTVL1 solver with `params`."""
  return cv2.optflow.DualTVL1OpticalFlow_create(  # type: ignore[attr-defined]
      tau=params.tau, lambda_=params.lambda_, theta=params.theta, nscales=params.scales,
      warps=params.warps, epsilon=params.epsilon, innnerIterations=params.inner_iterations,
      outerIterations=params.outer_iterations, scaleStep=params.scale_step,
      medianFiltering=params.median_filtering)

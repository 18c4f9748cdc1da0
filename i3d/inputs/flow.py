"""Optical flow for the I3D flow stream: TV-L1 behind one call, and the flow model input.

Two backends: `opencv`, the contrib DualTVL1 (the reference the released models were trained
with), and `tf`, our own TensorFlow TV-L1 (`i3d.inputs.tvl1`), batched over frame pairs and
compiled with XLA, so it runs on the GPU when TensorFlow sees one.
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

from i3d._util import progress
from i3d.errors import UserError
from i3d.inputs import transforms, tvl1
from i3d.inputs.settings import FLOW_BACKENDS, FLOW_BOUND, InputSettings, TVL1Params

# Seconds per frame pair of either backend with the released settings on a 2-core CPU at
# 256x340 (a 10 s clip's 249 pairs took 13.8 min with tf, 15.4 min with opencv); the estimate
# printed before long CPU runs scales it by the pixel count.
CPU_SECONDS_PER_PAIR = 3.3
CPU_REFERENCE_PIXELS = 256 * 340
ESTIMATE_ABOVE_SECONDS = 30.0
# (parameters, frame shape, batch) our TV-L1 has compiled in this process.
_compiled: set[tuple[TVL1Params, tuple[int, ...], int]] = set()


def compute_flow(frames: np.ndarray | tf.Tensor, backend: str = "tf",
                 params: TVL1Params = TVL1Params(), batch: int = 8) -> np.ndarray:
  """Flow between consecutive grayscale frames (T, H, W) in [0, 255] -> (T-1, H, W, 2) pixels.

  Channel 0 is horizontal, 1 vertical: frame t at (x, y) matches frame t+1 at (x + u, y + v).
  """
  gray = np.asarray(frames)
  if gray.ndim != 3 or len(gray) < 2:
    raise ValueError(f"need grayscale frames (T >= 2, H, W), got shape {gray.shape}")
  return flow_pairs(gray[:-1], gray[1:], backend, params, batch)


def flow_pairs(first: np.ndarray, second: np.ndarray, backend: str = "tf",
               params: TVL1Params = TVL1Params(), batch: int = 8) -> np.ndarray:
  """Flow from each image of `first` (N, H, W) to the same-index one of `second`: (N, H, W, 2).

  Images are rounded to uint8 first, so both backends see exactly the same input.
  """
  first, second = (np.clip(np.rint(np.asarray(x, np.float32)), 0, 255).astype(np.uint8)
                   for x in (first, second))
  if backend not in FLOW_BACKENDS:
    raise UserError(f"unknown flow backend {backend!r}; expected one of "
                    f"{', '.join(FLOW_BACKENDS)}")
  if not len(first):
    return np.zeros((*first.shape, 2), np.float32)
  estimate_note(len(first), first.shape[1:], backend)
  batch = 1 if backend == "opencv" else min(batch, len(first))
  fields = []
  with progress.bar(len(first), f"flow ({backend} TV-L1)", "pair") as bar:
    for i in range(0, len(first), batch):
      fields.append(_flow_batch(first[i:i + batch], second[i:i + batch], backend, params, batch))
      bar.update(len(fields[-1]))
  return np.concatenate(fields)


def _flow_batch(first: np.ndarray, second: np.ndarray, backend: str, params: TVL1Params,
                batch: int) -> np.ndarray:
  """Flow of up to `batch` pairs; says so while our TV-L1 compiles for a new frame size."""
  if backend == "opencv":
    return _opencv_flow(first, second, params)
  key = (params, first.shape[1:], batch)
  if key not in _compiled:
    progress.note(f"compiling TV-L1 for {first.shape[1]}x{first.shape[2]} (first call)...")
    _compiled.add(key)
  return tvl1.tvl1_flow(first, second, params, batch)


def estimate_note(pairs: int, shape: tuple[int, ...], backend: str) -> None:
  """Before a long flow run on a CPU: roughly how long it takes and how to go faster."""
  if backend == "tf" and tf.config.list_physical_devices("GPU"):
    return
  seconds = pairs * CPU_SECONDS_PER_PAIR * shape[0] * shape[1] / CPU_REFERENCE_PIXELS
  if seconds >= ESTIMATE_ABOVE_SECONDS:
    progress.note(f"optical flow: {pairs} frame pairs at {shape[0]}x{shape[1]} on the CPU take "
                  f"about {_duration(seconds)} (~{CPU_SECONDS_PER_PAIR:g} s per 256x340 pair); "
                  f"faster: --eval_type rgb (no flow), flow once with `i3d preprocess` (reused "
                  f"from its .npz), or a GPU (--flow_backend tf)")


def _duration(seconds: float) -> str:
  """`45 s`, `12 min`, `1.5 h`."""
  if seconds < 90:
    return f"{seconds:.0f} s"
  return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def normalise_flow(flow: np.ndarray | tf.Tensor) -> tf.Tensor:
  """Flow in pixels -> the released input range: truncated to [-20, 20], rescaled to [-1, 1]."""
  return tf.clip_by_value(tf.cast(flow, tf.float32), -FLOW_BOUND, FLOW_BOUND) / FLOW_BOUND


def _opencv_flow(first: np.ndarray, second: np.ndarray, params: TVL1Params) -> np.ndarray:
  """OpenCV's DualTVL1 on each pair."""
  solver = cv2.optflow.DualTVL1OpticalFlow_create(  # type: ignore[attr-defined]
      tau=params.tau, lambda_=params.lambda_, theta=params.theta, nscales=params.scales,
      warps=params.warps, epsilon=params.epsilon, innnerIterations=params.inner_iterations,
      outerIterations=params.outer_iterations, scaleStep=params.scale_step,
      medianFiltering=params.median_filtering)
  return np.stack([solver.calc(a, b, None) for a, b in zip(first, second)])


def flow_fields(frames: tf.Tensor, settings: InputSettings) -> np.ndarray:
  """Resized RGB frames (T, H, W, 3) -> flow (T, H, W, 2) in pixels, over the whole frame.

  Field t is from frame t to t+1; the last frame reuses the last field so both streams have T
  frames. A single frame has no motion: zero flow.
  """
  gray = transforms.to_gray(frames).numpy()
  if len(gray) < 2:
    return np.zeros(gray.shape + (2,), np.float32)
  fields = compute_flow(gray, settings.flow_backend, settings.flow_params)
  return np.concatenate([fields, fields[-1:]])


def flow_inputs(frames: tf.Tensor, offsets: tuple[int, int], settings: InputSettings) -> np.ndarray:
  """Resized RGB frames (T, H, W, 3) -> flow input (T, 224, 224, 2) in [-1, 1] (`flow_fields`
  normalised and cropped at `offsets`)."""
  return transforms.crop(normalise_flow(flow_fields(frames, settings)), offsets).numpy()

"""Optical flow for the I3D flow stream: TV-L1 behind one call, and the flow model input.

Two backends: `opencv`, the contrib DualTVL1 (the reference the released models were trained
with), and `tf`, our own TensorFlow TV-L1 (`i3d.inputs.tvl1`), batched over frame pairs and
compiled with XLA, so it runs on the GPU when TensorFlow sees one.
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

from i3d.errors import UserError
from i3d.inputs import transforms, tvl1
from i3d.inputs.settings import FLOW_BACKENDS, FLOW_BOUND, InputSettings, TVL1Params


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
  if backend == "opencv":
    return _opencv_flow(first, second, params)
  if backend == "tf":
    return tvl1.tvl1_flow(first, second, params, min(batch, len(first)))
  raise UserError(f"unknown flow backend {backend!r}; expected one of {', '.join(FLOW_BACKENDS)}")


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

"""Video decoding and the released I3D RGB preprocessing.

Decode with OpenCV, sample at 25 fps by presentation timestamps, optionally trim, resize the
shorter side to 256 (bilinear, aspect kept), crop 224x224 and rescale RGB to [-1, 1]. Resize,
crop and rescale are TensorFlow ops fed through `tf.data`, so they run on the GPU when there is
one while OpenCV keeps decoding on the CPU.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import tensorflow as tf

from i3d.errors import UserError
from i3d.model import MIN_FRAMES_FOR_LOGITS

# FFmpeg's own log lines ("moov atom not found") would repeat our one-line errors; users who
# want them set OPENCV_FFMPEG_LOGLEVEL themselves.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

FPS = 25.0
RESIZE_SHORT_SIDE = 256
CROP_SIZE = 224
# Two output steps at the network's temporal stride of 8: the least the final 2-frame pool takes.
MIN_FRAMES = MIN_FRAMES_FOR_LOGITS  # shorter clips are looped to this


@dataclasses.dataclass(frozen=True)
class Clip:
  """Frames sampled from one video: uint8 RGB (T, H, W, 3) at source resolution, and their times."""
  path: Path
  frames: np.ndarray
  times: np.ndarray


def _open(path: Path) -> cv2.VideoCapture:
  """An opened capture for `path`; a missing file or one OpenCV cannot read is a `UserError`."""
  if not path.exists():
    raise UserError(f"{path}: no such file")
  if not path.is_file():
    raise UserError(f"{path}: not a file")
  level = cv2.utils.logging.getLogLevel()
  cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our message says it all
  try:
    capture = cv2.VideoCapture(str(path))
  finally:
    cv2.utils.logging.setLogLevel(level)
  if not capture.isOpened():
    raise UserError(f"{path}: not a video OpenCV can open (unknown format or corrupt file)")
  return capture


def _decoded(capture: cv2.VideoCapture) -> Iterator[tuple[float, np.ndarray]]:
  """(timestamp in seconds, BGR frame) for every decodable frame, in order.

  Timestamps are the container's presentation times (CAP_PROP_POS_MSEC), which stay right for
  variable frame rates; where a backend gives none that increase, index / fps is used instead.
  """
  fps = capture.get(cv2.CAP_PROP_FPS)
  index, last = 0, -math.inf
  while True:
    ok, frame = capture.read()
    if not ok or frame is None:
      return
    t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
    if not t > last or not math.isfinite(t):
      t = max(index / fps, last + 1e-6) if fps > 0 else last + 1.0 / FPS
    last = t
    index += 1
    yield t, frame


def output_tick(t: float, start: float, fps: float) -> int:
  """The output frame slot a source frame at time `t` falls on: (t - start) * fps, rounded."""
  return math.floor((t - start) * fps + 0.5 + 1e-6)


def _resampled(frames: Iterator[tuple[float, np.ndarray]], fps: float, start: float,
               end: float) -> Iterator[tuple[float, np.ndarray]]:
  """The frame on screen at each output time start + k / fps < end, as ffmpeg's `-r` picks it.

  Each source frame moves to its nearest output slot; slot k shows the latest frame placed at
  or before it. For constant rates that is the frame nearest in time; for variable rates a frame
  fills the slots for as long as it is displayed. The last frame lasts one mean frame interval.
  """
  k, prev, first, count, t = 0, None, None, 0, 0.0
  for t, frame in frames:
    first = t if first is None else first
    t -= first
    count += 1
    tick = output_tick(t, start, fps)
    if prev is not None:
      while k < tick and start + k / fps < end:
        yield start + k / fps, prev
        k += 1
      if start + k / fps >= end:
        return
    prev = frame
  if prev is None:
    return
  duration = t + (t / (count - 1) if count > 1 else 1.0 / fps)
  while (target := start + k / fps) < min(end, duration) - 1e-9:
    yield target, prev
    k += 1


def iter_frames(path: str | Path, time_start: float | None = None, time_end: float | None = None,
                fps: float = FPS) -> Iterator[tuple[float, np.ndarray]]:
  """(time, uint8 RGB frame) sampled at `fps` from `path`, trimmed to [time_start, time_end)."""
  path = Path(path)
  start = float(time_start or 0.0)
  end = math.inf if time_end is None else float(time_end)
  if start < 0 or end <= start:
    raise UserError(f"{path}: empty trim window [{time_start}, {time_end}] s")
  capture = _open(path)
  try:
    for t, bgr in _resampled(_decoded(capture), fps, start, end):
      if bgr.ndim != 3 or min(bgr.shape[:2]) < 2:
        raise UserError(f"{path}: frames of {bgr.shape[1]}x{bgr.shape[0]} pixels are too small "
                        f"to resize and crop")
      yield t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
  finally:
    capture.release()


def read_clip(path: str | Path, time_start: float | None = None, time_end: float | None = None,
              fps: float = FPS) -> Clip:
  """All frames of `path` sampled at `fps` and trimmed; no decodable frame is a `UserError`."""
  path = Path(path)
  try:
    pairs = list(iter_frames(path, time_start, time_end, fps))
  except cv2.error as e:
    raise UserError(f"{path}: cannot decode ({e.err or e})") from None
  if not pairs:
    raise UserError(_no_frames_message(path, time_start, time_end))
  times, frames = zip(*pairs)
  return Clip(path, np.stack(frames), np.asarray(times))


def _no_frames_message(path: Path, time_start: float | None, time_end: float | None) -> str:
  """Why a video gave no frames: a trim window past its end, or nothing decodable at all."""
  if time_start:
    length = _decoded_length(path)
    if length > 0:
      return (f"{path}: trim window [{time_start}, {time_end}] s lies outside the video "
              f"({length:.2f} s long)")
  return f"{path}: no decodable video frame (empty, truncated or corrupt file)"


def _decoded_length(path: Path) -> float:
  """Seconds of decodable video in `path` (0 when none)."""
  capture = _open(path)
  try:
    times = [t for t, _ in _decoded(capture)]
  finally:
    capture.release()
  if not times:
    return 0.0
  return times[-1] - times[0] + (times[-1] - times[0]) / max(len(times) - 1, 1)


def resized_size(height: int, width: int, short_side: int = RESIZE_SHORT_SIDE) -> tuple[int, int]:
  """(height, width) with the shorter side `short_side` and the aspect ratio kept (rounded)."""
  scale = short_side / min(height, width)
  return max(short_side, round(height * scale)), max(short_side, round(width * scale))


def resize_frames(frames: tf.Tensor, short_side: int = RESIZE_SHORT_SIDE) -> tf.Tensor:
  """Frames (..., H, W, C) -> float32 in [0, 255] with shorter side `short_side` (bilinear)."""
  height, width = frames.shape[-3], frames.shape[-2]
  size = resized_size(height, width, short_side)
  return tf.image.resize(tf.cast(frames, tf.float32), size, method="bilinear", antialias=False)


def crop_offsets(height: int, width: int, size: int = CROP_SIZE,
                 rng: np.random.Generator | None = None) -> tuple[int, int]:
  """Top-left corner of a `size` crop: centred, or uniformly random when `rng` is given."""
  if rng is None:
    return (height - size) // 2, (width - size) // 2
  return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def crop(frames: tf.Tensor, offsets: tuple[int, int], size: int = CROP_SIZE,
         flip: bool = False) -> tf.Tensor:
  """The `size` x `size` window at `offsets` of frames (..., H, W, C), mirrored when `flip`."""
  y, x = offsets
  out = frames[..., y:y + size, x:x + size, :]
  return tf.reverse(out, axis=[-2]) if flip else out


def rescale_rgb(frames: tf.Tensor) -> tf.Tensor:
  """[0, 255] -> [-1, 1], the range the released RGB models take."""
  return frames / 127.5 - 1.0


def to_gray(frames: tf.Tensor) -> tf.Tensor:
  """RGB (..., 3) in [0, 255] -> luma (...) with OpenCV's weights (BT.601)."""
  return tf.tensordot(frames, tf.constant([0.299, 0.587, 0.114], tf.float32), axes=[[-1], [0]])


def resized_frames(path: str | Path, time_start: float | None = None,
                   time_end: float | None = None, batch: int = 32) -> tf.Tensor:
  """Frames of `path` at 25 fps, resized to shorter side 256: float32 (T, H', W', 3) in [0, 255].

  A `tf.data` pipeline resizes batches (on the GPU when present) while OpenCV decodes the next.
  """
  path = Path(path)
  frames = iter_frames(path, time_start, time_end)
  try:
    _, first = next(frames)
  except StopIteration:
    raise UserError(_no_frames_message(path, time_start, time_end)) from None
  except cv2.error as e:
    raise UserError(f"{path}: cannot decode ({e.err or e})") from None

  def generate() -> Iterator[np.ndarray]:
    yield first
    for _, frame in frames:
      yield frame

  spec = tf.TensorSpec(first.shape, tf.uint8)
  dataset = (tf.data.Dataset.from_generator(generate, output_signature=spec).batch(batch)
             .map(resize_frames).prefetch(2))
  return tf.concat(list(dataset), axis=0)


def rgb_inputs(frames: tf.Tensor, offsets: tuple[int, int] | None = None,
               flip: bool = False) -> tf.Tensor:
  """Resized frames (T, H, W, 3) in [0, 255] -> model RGB input (T, 224, 224, 3) in [-1, 1]."""
  offsets = offsets or crop_offsets(frames.shape[-3], frames.shape[-2])
  return rescale_rgb(crop(frames, offsets, flip=flip))


def loop_to_length(frames: np.ndarray, length: int = MIN_FRAMES) -> np.ndarray:
  """`frames` (T, ...) repeated from the start until it has at least `length` frames."""
  if len(frames) >= length:
    return frames
  return frames[np.arange(length) % len(frames)]


def windows(frames: np.ndarray, count: int, length: int) -> np.ndarray:
  """`count` windows of `length` frames, uniformly spaced over (T, ...): (count, length, ...)."""
  frames = loop_to_length(frames, length)
  starts = np.round(np.linspace(0, len(frames) - length, count)).astype(int)
  return np.stack([frames[s:s + length] for s in starts])

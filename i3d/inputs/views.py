"""Test-time views: which crops and which frames of a video the classifier sees.

The released protocol is the whole clip, centre-cropped. Multi-view testing takes `windows`
evenly spaced windows of `window_frames` frames times 1 or 3 crops, and averages the logits.
`i3d predict`, `i3d evaluate` and feature extraction (`i3d.embed.features`: a window every
`stride` frames) all build their inputs here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from i3d._util import env
from i3d.errors import UserError
from i3d.inputs import cache, flow, transforms
from i3d.inputs.settings import InputSettings
from i3d.model.streams import MIN_FRAMES


@dataclasses.dataclass(frozen=True)
class Protocol:
  """How a video becomes views: the released whole clip and centre crop (windows=0, crops=1), or
  `windows` evenly spaced windows of `window_frames` x `crops` (1 centre, 3 along the long side)."""
  windows: int = 0
  window_frames: int = 64
  crops: int = 1

  def __post_init__(self):
    if self.crops not in (1, 3):
      raise UserError(f"crops must be 1 or 3, got {self.crops}")
    if self.windows < 0 or (self.windows and self.window_frames < MIN_FRAMES):
      raise UserError(f"windows must be >= 0 and window_frames >= {MIN_FRAMES} (the model's "
                      f"shortest input); got {self.windows} and {self.window_frames}")
    if self.windows:
      _check_window_memory(self.window_frames, self.crops)

  def describe(self) -> str:
    """A short human description for summaries."""
    if not self.windows and self.crops == 1:
      return "released (whole clip, centre crop)"
    time = (f"{self.windows} x {self.window_frames}-frame windows" if self.windows
            else "whole clip")
    return f"{time} x {self.crops} crop{'s' if self.crops > 1 else ''}, logits averaged"


# Bytes one frame of one view takes through the network at its peak (both streams' inputs and
# the first layers' activations, float32), to bound `window_frames` before anything is built.
VIEW_FRAME_BYTES = 4 << 20


def _check_window_memory(window_frames: int, crops: int) -> None:
  """A `UserError` unless windows of `window_frames` frames are at most `$I3D_MAX_FRAMES` long
  and one batch of them fits in this machine's free memory."""
  most = env.limit("I3D_MAX_FRAMES")
  if window_frames > most:
    raise UserError(f"--window_frames {window_frames} is more than {most} frames "
                    f"($I3D_MAX_FRAMES); use shorter windows")
  need, free = window_frames * crops * VIEW_FRAME_BYTES, env.available_memory()
  if need > free:
    raise UserError(f"--window_frames {window_frames}: a view needs about {need >> 20} MiB and "
                    f"this machine has {free >> 20} MiB free; use at most "
                    f"{max(MIN_FRAMES, free // (crops * VIEW_FRAME_BYTES))} frames")


def loop_to_length(frames: np.ndarray, length: int = MIN_FRAMES) -> np.ndarray:
  """`frames` (T, ...) repeated from the start until it has at least `length` frames."""
  if len(frames) >= length:
    return frames
  return frames[np.arange(length) % len(frames)]


def window_starts(total: int, length: int, count: int = 0, stride: int = 0) -> np.ndarray:
  """First frames of the windows of `length` frames over `total` >= `length` frames.

  Args:
    total: frames in the clip (after `loop_to_length`).
    length: frames per window.
    count: `count` windows uniformly spaced, the first at the start and the last at the end
      (multi-view testing); used when `stride` is 0.
    stride: one window every `stride` frames from the first frame. When frames are left over
      after the last full window, one more window ends at the last frame, overlapping the one
      before it, so every frame is covered and every window has `length` frames.

  Returns:
    int64 start frames, ascending.
  """
  if total < length:
    raise ValueError(f"{total} frames are fewer than a window of {length}; loop them first")
  if not stride:
    return np.round(np.linspace(0, total - length, count)).astype(np.int64)
  starts = np.arange(0, total - length + 1, stride, dtype=np.int64)
  if starts[-1] + length < total:
    starts = np.append(starts, total - length)
  return starts


def take_windows(frames: np.ndarray, starts: Sequence[int] | np.ndarray,
                 length: int) -> np.ndarray:
  """Windows of `length` frames of (T, ...) beginning at `starts`: (len(starts), length, ...)."""
  return np.stack([frames[s:s + length] for s in starts])


class Windows(np.lib.mixins.NDArrayOperatorsMixin):
  """`count` windows of `length` frames uniformly spaced over each crop (crops, T, ...), crop by
  crop: an array-like (views, length, ...) whose windows are copied out only when indexed, so
  many windows of a long clip cost the memory of the clip plus the batch being classified.
  Arithmetic and NumPy functions see the stacked array."""

  def __init__(self, crops: np.ndarray | Sequence[np.ndarray], count: int, length: int):
    self.crops = [loop_to_length(c, length) for c in crops]
    self.length = length
    self.starts = [(i, int(s)) for i, c in enumerate(self.crops)
                   for s in window_starts(len(c), length, count)]
    self.shape = (len(self.starts), length, *self.crops[0].shape[1:])
    self.dtype = self.crops[0].dtype

  def __len__(self) -> int:
    return len(self.starts)

  def __getitem__(self, index) -> np.ndarray:
    """A window (int), stacked windows (slice), or NumPy indexing of those (tuple)."""
    if isinstance(index, tuple):
      first, rest = index[0], index[1:]
      return self[first][rest if isinstance(first, int) else (slice(None), *rest)]
    if isinstance(index, slice):
      return np.stack([self[i] for i in range(len(self))[index]])
    crop, start = self.starts[index]
    return self.crops[crop][start:start + self.length]

  def __array__(self, dtype=None, copy=None) -> np.ndarray:
    return self[:] if dtype is None else self[:].astype(dtype)

  def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
    arrays = [np.asarray(x) if isinstance(x, Windows) else x for x in inputs]
    return getattr(ufunc, method)(*arrays, **kwargs)


# Views of one stream: an array, or lazy `Windows` of one.
ViewArray = np.ndarray | Windows


def windows(frames: np.ndarray, count: int, length: int) -> np.ndarray:
  """`count` windows of `length` frames, uniformly spaced over (T, ...): (count, length, ...)."""
  frames = loop_to_length(frames, length)
  return take_windows(frames, window_starts(len(frames), length, count), length)


def temporal_views(crops: np.ndarray, protocol: Protocol) -> ViewArray:
  """(crops, T, ...) -> (views, frames, ...): each crop's whole clip (looped up to the model's
  minimum) or its `protocol.windows` windows, crop by crop (a lazy `Windows`)."""
  if protocol.windows:
    return Windows(crops, protocol.windows, protocol.window_frames)
  return np.stack([loop_to_length(c) for c in crops])


def cropped_inputs(source: str | Path, settings: InputSettings, streams: Sequence[str],
                   crops: int = 1, use_cache: bool = True) -> dict[str, np.ndarray]:
  """Inputs {stream: (crops, T, 224, 224, C)} of a video, or of an inputs `.npz` given directly.

  One centre crop comes through the `.npz` cache beside the video when that was made with the
  same settings. With 3 crops TV-L1 runs once, on the whole frames, and each crop is cut from it.
  """
  source = Path(source)
  if source.suffix == ".npz":
    if crops != 1:
      raise UserError(f"{source}: an inputs .npz holds the centre crop only; use 1 crop")
    stored, _ = cache.load_inputs(source)
    missing = [s for s in streams if s not in stored]
    if missing:
      raise UserError(f"{source}: has no {' or '.join(missing)} input")
    return {s: stored[s] for s in streams}
  if crops == 1:
    path = cache.default_cache_path(source) if use_cache else None
    return cache.cached_inputs(source, settings, streams, path)
  frames = transforms.resized_frames(source, settings.time_start, settings.time_end)
  offsets = transforms.crop_offsets(frames.shape[1], frames.shape[2], crops)
  inputs = {}
  for stream in streams:
    whole = flow.normalise_flow(flow.flow_fields(frames, settings)) if stream == "flow" else frames
    cut = transforms.crop if stream == "flow" else transforms.rgb_inputs
    inputs[stream] = np.stack([cut(whole, o).numpy() for o in offsets])
  return inputs


def video_views(source: str | Path, streams: Sequence[str], settings: InputSettings,
                protocol: Protocol = Protocol(),
                use_cache: bool = True) -> dict[str, ViewArray]:
  """The model inputs of one video under `protocol`.

  Args:
    source: a video file, or an inputs `.npz` written by `i3d preprocess`.
    streams: which inputs to make ("rgb", "flow").
    settings: trim window and flow backend.
    protocol: windows x crops (default: the released whole clip, centre crop).
    use_cache: reuse `VIDEO_inputs.npz` beside the video when its settings match.

  Returns:
    {stream: float32 (views, T, 224, 224, C) in [-1, 1]}, views ordered crop by crop (a lazy
    `Windows` with `protocol.windows`).
  """
  return views_of(cropped_inputs(source, settings, streams, protocol.crops, use_cache), protocol)


def views_of(crops: dict[str, np.ndarray], protocol: Protocol) -> dict[str, ViewArray]:
  """{stream: (crops, T, ...)} from `cropped_inputs` -> {stream: (views, frames, ...)}."""
  return {s: temporal_views(c, protocol) for s, c in crops.items()}

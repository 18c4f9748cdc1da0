"""Decoding: open a video with OpenCV and sample its frames at 25 fps by presentation time.

The first stage of the video pipeline (decode -> transforms -> flow -> views). No TensorFlow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from i3d._util import env, progress
from i3d.errors import UserError
from i3d.inputs.settings import FPS

# Stands for a frame grabbed but not retrieved (counting frames).
_GRABBED = np.zeros(0, np.uint8)


@dataclasses.dataclass(frozen=True)
class SampledVideo:
  """Frames sampled from one video: uint8 RGB (T, H, W, 3) at source resolution, and their times."""
  path: Path
  frames: np.ndarray
  times: np.ndarray


def open_video(path: Path) -> cv2.VideoCapture:
  """An opened capture for `path`; a missing file or one OpenCV cannot read is a `UserError`.

  OpenCV takes file names as UTF-8 and crashes on others, so a name that is not UTF-8 is
  opened through a temporary link with a plain name.
  """
  if not path.exists():
    raise UserError(f"{path}: no such file")
  if not path.is_file():
    raise UserError(f"{path}: not a file")
  level = cv2.utils.logging.getLogLevel()
  cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our message says it all
  try:
    if _is_utf8(path):
      capture = cv2.VideoCapture(str(path))
    else:
      with tempfile.TemporaryDirectory(prefix="i3d-video-") as folder:
        link = Path(folder) / f"video{path.suffix if _is_utf8(Path(path.suffix)) else ''}"
        os.symlink(os.path.abspath(path), link)
        capture = cv2.VideoCapture(str(link))  # the link may go once the file is open
  finally:
    cv2.utils.logging.setLogLevel(level)
  if not capture.isOpened():
    raise UserError(f"{path}: not a video OpenCV can open (unknown format or corrupt file)")
  _check_frame_size(path, int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                    int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
  return capture


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[cv2.VideoCapture]:
  """`open_video(path)`, released when the block ends; a frame OpenCV fails to decode in the
  block is a `UserError`."""
  capture = open_video(path)
  try:
    yield capture
  except cv2.error as e:
    raise UserError(f"{path}: cannot decode ({e.err or e})") from None
  finally:
    capture.release()


def _is_utf8(path: Path) -> bool:
  """Whether `path` is a name OpenCV can take (valid UTF-8, no NUL)."""
  try:
    str(path).encode("utf-8")
  except UnicodeEncodeError:
    return False
  return "\0" not in str(path)


def _check_frame_size(path: Path, height: int, width: int) -> None:
  """A `UserError` for frames over `$I3D_MAX_PIXELS` or `$I3D_MAX_ASPECT_RATIO`, before any
  frame of that size is decoded or resized (0 means the container does not say)."""
  if min(height, width) <= 0:
    return
  pixels, aspect = env.limit("I3D_MAX_PIXELS"), env.limit("I3D_MAX_ASPECT_RATIO")
  if height * width > pixels or max(height, width) > aspect * min(height, width):
    raise UserError(f"{path}: frames of {width}x{height} pixels are over the limits of "
                    f"{pixels} pixels ($I3D_MAX_PIXELS) and aspect ratio {aspect} "
                    f"($I3D_MAX_ASPECT_RATIO); scale or crop the video first")


def _decoded(capture: cv2.VideoCapture,
             retrieve: bool = True) -> Iterator[tuple[float, np.ndarray]]:
  """(timestamp in seconds, BGR frame) for every decodable frame, in order; without `retrieve`
  the frame is an empty array (only grabbed: no colour conversion or copy, for counting).

  Timestamps are the container's presentation times (CAP_PROP_POS_MSEC), which stay right for
  variable frame rates; where a backend gives none that increase, index / fps is used instead.
  """
  fps = capture.get(cv2.CAP_PROP_FPS)
  index, last = 0, -math.inf
  while True:
    if retrieve:
      ok, frame = capture.read()
    else:
      ok, frame = capture.grab(), _GRABBED
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


# Latest trim-window start taken (a year), so times far out never overflow frame arithmetic.
MAX_START_SECONDS = 365 * 24 * 3600


def _trim(path: Path, time_start: float | None, time_end: float | None) -> tuple[float, float]:
  """(start, end) seconds of a trim window; an empty or non-numeric one, or one starting after
  `MAX_START_SECONDS`, is a `UserError`."""
  start = float(time_start or 0.0)
  end = math.inf if time_end is None else float(time_end)
  if not 0 <= start < end:  # also refuses NaN
    raise UserError(f"{path}: empty trim window [{time_start}, {time_end}] s (times must be "
                    f"numbers with 0 <= start < end)")
  if start > MAX_START_SECONDS:  # 1e308 s would overflow the frame arithmetic
    raise UserError(f"{path}: trim window [{time_start}, {time_end}] s starts after "
                    f"{MAX_START_SECONDS:g} s, far past any video's end")
  return start, end


def iter_frames(path: str | Path, time_start: float | None = None, time_end: float | None = None,
                fps: float = FPS) -> Iterator[tuple[float, np.ndarray]]:
  """(time, uint8 RGB frame) sampled at `fps` from `path`, trimmed to [time_start, time_end)."""
  yield from _sampled(Path(path), time_start, time_end, fps, retrieve=True)


def count_frames(path: str | Path, time_start: float | None = None,
                 time_end: float | None = None, fps: float = FPS) -> int:
  """How many frames `iter_frames` yields, counted by grabbing frames without converting them
  (a first pass where the count must be known before frames are used: uniformly spaced windows,
  chunked whole clips). Guarded by `$I3D_MAX_FRAMES` as `iter_frames` is."""
  return sum(1 for _ in _sampled(Path(path), time_start, time_end, fps, retrieve=False))


def _sampled(path: Path, time_start: float | None, time_end: float | None, fps: float,
             retrieve: bool) -> Iterator[tuple[float, np.ndarray]]:
  """`iter_frames`, or without `retrieve` the frames only grabbed (empty arrays: `count_frames`)."""
  start, end = _trim(path, time_start, time_end)
  most = env.limit("I3D_MAX_FRAMES")
  verb = "decoding" if retrieve else "counting"
  with _opened(path) as capture, progress.bar(_expected_frames(capture, start, end, fps),
                                              f"{verb} {path.name}", "frame") as bar:
    for count, (t, bgr) in enumerate(_resampled(_decoded(capture, retrieve), fps, start, end)):
      # The `$I3D_MAX_FRAMES` guard against timestamp bombs (a header or timestamps claiming days
      # of video), checked as frames are sampled.
      if count == most:
        raise UserError(f"{path}: more than {most} frames at {fps:g} fps ($I3D_MAX_FRAMES); "
                        f"trim it with --time_start/--time_end, or raise the limit")
      if retrieve:
        if bgr.ndim != 3 or min(bgr.shape[:2]) < 2:
          raise UserError(f"{path}: frames of {bgr.shape[1]}x{bgr.shape[0]} pixels are too "
                          f"small to resize and crop")
        _check_frame_size(path, *bgr.shape[:2])
      bar.update()
      yield t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if retrieve else bgr


def expected_frames(path: str | Path, time_start: float | None = None,
                    time_end: float | None = None, fps: float = FPS) -> int | None:
  """About how many frames `iter_frames` yields, from the container's header alone (None when it
  does not say); for estimates, never for plans."""
  path = Path(path)
  start, end = _trim(path, time_start, time_end)
  with _opened(path) as capture:
    return _expected_frames(capture, start, end, fps)


def _expected_frames(capture: cv2.VideoCapture, start: float, end: float,
                     fps: float) -> int | None:
  """About how many frames sampling yields, from the container's header (None if unknown)."""
  count, rate = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
  if not (count > 0 and rate > 0):
    return None
  seconds = min(end, count / rate) - start
  return max(0, round(seconds * fps)) or None


def read_video(path: str | Path, time_start: float | None = None,
               time_end: float | None = None, fps: float = FPS) -> SampledVideo:
  """All frames of `path` sampled at `fps` and trimmed; no decodable frame is a `UserError`."""
  path = Path(path)
  pairs = list(iter_frames(path, time_start, time_end, fps))
  if not pairs:
    raise UserError(no_frames_message(path, time_start, time_end))
  times, frames = zip(*pairs)
  return SampledVideo(path, np.stack(frames), np.asarray(times))


def first_frames(path: str | Path, count: int) -> np.ndarray:
  """The first `count` decodable frames of `path` as stored (no frame-rate resampling): uint8
  RGB (<= count, H, W, 3); fewer when the video is shorter. Used where clips are frame
  sequences, such as generated videos for FVD."""
  path = Path(path)
  frames: list[np.ndarray] = []
  with _opened(path) as capture:
    for _, bgr in _decoded(capture):
      if len(frames) == count:
        break
      frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
  if not frames:
    raise UserError(no_frames_message(path, None, None))
  return np.stack(frames)


def no_frames_message(path: Path, time_start: float | None, time_end: float | None) -> str:
  """Why a video gave no frames: a trim window past its end, or nothing decodable at all."""
  if time_start:
    length = _decoded_length(path)
    if length > 0:
      return (f"{path}: trim window [{time_start}, {time_end}] s lies outside the video "
              f"({length:.2f} s long)")
  return f"{path}: no decodable video frame (empty, truncated or corrupt file)"


def _decoded_length(path: Path) -> float:
  """Seconds of decodable video in `path` (0 when none)."""
  with _opened(path) as capture:
    times = [t for t, _ in _decoded(capture)]
  if not times:
    return 0.0
  return times[-1] - times[0] + (times[-1] - times[0]) / max(len(times) - 1, 1)


def is_readable(path: Path) -> bool:
  """Whether `path` opens and has a first decodable frame (catches empty and truncated files)."""
  try:
    capture = open_video(Path(path))
  except UserError:
    return False
  try:
    return capture.read()[0]
  finally:
    capture.release()

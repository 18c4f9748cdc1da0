"""The one chain from a stored video to model inputs, as named stages over blocks of frames.

    decode.iter_frames -> resized -> with_flow -> cropped -> (stacked | windows)

Each stage is a generator over `Block`s of consecutive 25 fps frames, so a video of any length
passes through in the memory of a few blocks: frames are resized a block at a time, TV-L1 runs
on consecutive pairs as they arrive (each pair once, however many windows share it), crops are
cut, and `windows` hands out each window as soon as its last frame is in, keeping only the
frames an unfinished window still needs. `stacked` gathers a whole clip where one is wanted
(the `.npz` cache). The cache, test-time views, records and features all use this chain; records
also take the stages `resized` and `with_flow` before the crop (they store whole frames).

Errors raised by any stage (a `UserError` such as `$I3D_MAX_FRAMES`) reach the caller as they
were raised: no stage runs inside a `tf.data` pipeline.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from i3d._util import progress
from i3d.errors import UserError
from i3d.inputs import decode, flow, transforms
from i3d.inputs.settings import InputSettings
from i3d.model.chunks import FrameCountError

# Frames per block: enough pairs to keep every core busy with TV-L1, few enough to stay small.
BLOCK_FRAMES = 16


@dataclasses.dataclass(frozen=True)
class Block:
  """Consecutive frames of a clip from frame `start`: resized `images` float32 (k, H, W, 3) in
  [0, 255] and their flow `fields` float32 (k, H, W, 2) in pixels (None without flow). Field t is
  from frame t to t+1; the last frame repeats the last field; fields not wanted are zero."""
  start: int
  images: np.ndarray
  fields: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.images)


@dataclasses.dataclass(frozen=True)
class Inputs:
  """Model inputs of consecutive frames from frame `start`: {stream: float32 (crops, k, 224, 224,
  C)} in [-1, 1]."""
  start: int
  arrays: dict[str, np.ndarray]

  def __len__(self) -> int:
    return next(iter(self.arrays.values())).shape[1]


def resized(path: str | Path, settings: InputSettings,
            size: int = BLOCK_FRAMES) -> Iterator[Block]:
  """Frames of `path` at 25 fps (trimmed by `settings`), shorter side resized to 256, `size` at a
  time. No decodable frame, or one that fails to decode, is a `UserError`."""
  path = Path(path)
  frames = decode.iter_frames(path, settings.time_start, settings.time_end)
  start = 0
  try:
    while chunk := [frame for _, frame in itertools.islice(frames, size)]:
      yield Block(start, transforms.resize_frames(np.stack(chunk)).numpy())
      start += len(chunk)
  except cv2.error as e:
    raise UserError(f"{path}: cannot decode ({e.err or e})") from None
  if not start:
    raise UserError(decode.no_frames_message(path, settings.time_start, settings.time_end))


def with_flow(blocks: Iterable[Block], settings: InputSettings,
              wanted: Callable[[int], bool] | None = None,
              expected: int | None = None) -> Iterator[Block]:
  """`blocks` with their TV-L1 `fields`, each block out once the first frame of the next is in.

  Args:
    blocks: resized frames, in order.
    settings: the flow backend and parameters.
    wanted: which frames need their field (default: all); others get zeros and no TV-L1.
    expected: about how many frames will come (e.g. `decode.expected_frames`), for the line
      that says how long TV-L1 will take on a CPU (`flow.estimate_note`); None for no line.

  Returns:
    The same blocks with fields: field t from frame t to t+1 (in pixels, over the whole frame);
    the last frame repeats the last field; a single frame has zero flow.
  """
  wanted = wanted or (lambda index: True)
  previous: Block | None = None
  before = None  # (image, field) of the frame before `previous`
  with progress.bar(None, f"flow ({settings.flow_backend} TV-L1)", "pair") as bar:
    for block in blocks:
      if previous is None and expected:
        pairs = sum(1 for i in range(expected - 1) if wanted(i))
        flow.estimate_note(pairs, block.images.shape[1:3], settings.flow_backend)
      if previous is not None:
        fields = _fields(previous, block.images[0], settings, wanted, bar)
        before = previous.images[-1], fields[-1]
        yield dataclasses.replace(previous, fields=fields)
      previous = block
    if previous is None:
      return
    fields = _fields(previous, None, settings, wanted, bar)
    last = previous.start + len(previous) - 1
    if last and wanted(last):  # the last frame repeats the field of the last pair
      if len(previous) > 1:
        image, field = previous.images[-2], fields[-2]
      else:
        assert before is not None
        image, field = before
      if not wanted(last - 1):
        gray = transforms.to_gray(np.stack([image, previous.images[-1]])).numpy()
        field = flow.flow_pairs(gray[:1], gray[1:], settings.flow_backend, settings.flow_params,
                                show=False)[0]
      fields[-1] = field
    yield dataclasses.replace(previous, fields=fields)


def _fields(block: Block, following: np.ndarray | None, settings: InputSettings,
            wanted: Callable[[int], bool], bar) -> np.ndarray:
  """Fields of each frame of `block` to its next frame (`following` after the last; without it
  the last field is left zero), computed for the wanted frames only."""
  images = block.images if following is None else np.concatenate([block.images, following[None]])
  gray = transforms.to_gray(images).numpy()
  fields = np.zeros((*block.images.shape[:3], 2), np.float32)
  pairs = [i for i in range(len(gray) - 1) if wanted(block.start + i)]
  if pairs:
    fields[pairs] = flow.flow_pairs(gray[pairs], gray[[i + 1 for i in pairs]],
                                    settings.flow_backend, settings.flow_params, show=False)
    bar.update(len(pairs))
  return fields


def cropped(blocks: Iterable[Block], streams: Sequence[str], crops: int = 1) -> Iterator[Inputs]:
  """Blocks -> model inputs: RGB rescaled to [-1, 1], flow truncated to [-20, 20] px and
  rescaled, each cut at the `crops` offsets (`transforms.crop_offsets`) of the first frame's
  size, as released."""
  offsets = None
  for block in blocks:
    height, width = block.images.shape[1:3]
    offsets = offsets or transforms.crop_offsets(height, width, crops)
    yield Inputs(block.start, {stream: crop_all(tf.constant(block.images) if stream == "rgb"
                                                else flow.normalise_flow(block.fields), stream,
                                                offsets) for stream in streams})


def crop_all(frames: tf.Tensor, stream: str, offsets: Sequence[tuple[int, int]]) -> np.ndarray:
  """Frames (k, H, W, C) -> (crops, k, 224, 224, C): RGB in [0, 255] cut and rescaled, flow
  (already in [-1, 1]) cut."""
  cut = transforms.rgb_inputs if stream == "rgb" else transforms.crop
  return np.stack([cut(frames, o).numpy() for o in offsets])


def video_inputs(path: str | Path, settings: InputSettings, streams: Sequence[str],
                 crops: int = 1, wanted: Callable[[int], bool] | None = None) -> Iterator[Inputs]:
  """The chain for a video: decoded, resized, flow (when `streams` has it; for `wanted` frames),
  cropped."""
  blocks: Iterable[Block] = resized(path, settings)
  if "flow" in streams:
    expected = decode.expected_frames(path, settings.time_start, settings.time_end)
    blocks = with_flow(blocks, settings, wanted, expected)
  return cropped(blocks, streams, crops)


def stacked(inputs: Iterable[Inputs]) -> dict[str, np.ndarray]:
  """A whole clip's inputs {stream: (crops, T, 224, 224, C)}, gathered block by block into one
  array per stream (no second copy)."""
  parts: dict[str, list[np.ndarray]] = {}
  for item in inputs:
    for stream, array in item.arrays.items():
      parts.setdefault(stream, []).append(array)
  return {s: np.concatenate(p, axis=1) if len(p) > 1 else p[0] for s, p in parts.items()}


def gathered(blocks: Iterable[Block]) -> Block:
  """Blocks of one clip joined into one (whole resized frames and fields, e.g. to measure a
  stage)."""
  parts = list(blocks)
  fields = None if parts[0].fields is None else np.concatenate([b.fields for b in parts])
  return Block(parts[0].start, np.concatenate([b.images for b in parts]), fields)


@dataclasses.dataclass(frozen=True)
class Window:
  """One window's inputs {stream: (crops, length, 224, 224, C)}, first frame `start` and
  one-past-last frame `stop` in the clip (`stop - start` < length when a short clip was
  looped)."""
  start: int
  stop: int
  arrays: dict[str, np.ndarray]


def windows(inputs: Iterable[Inputs], length: int, starts: Sequence[int] | None = None,
            stride: int = 0) -> Iterator[Window]:
  """Windows of `length` frames, each handed out as soon as its last frame is in.

  Args:
    inputs: the clip's model inputs, in order.
    length: frames per window.
    starts: the windows' first frames, ascending, all ending inside the clip (e.g. from
      `views.window_starts` when the clip's length is known).
    stride: instead of `starts`, a window every `stride` frames from the first; when frames are
      left over after the last full window, one more window ends at the clip's last frame, and
      a clip shorter than a window is looped from its start to one window (as
      `views.window_starts` and `views.loop_to_length` do).

  Returns:
    The windows, in order of their starts. Only the frames of windows not yet complete (and,
    with `stride`, the last `length` frames) are kept.
  """
  planned = deque(starts) if starts is not None else None
  buffer: deque[dict[str, np.ndarray]] = deque()  # frames from `base` on, (crops, 224, 224, C)
  base, total, done = 0, 0, -1

  def next_start() -> int | None:
    if planned is not None:
      return planned[0] if planned else None
    return done + stride if done >= 0 else 0

  def window(start: int) -> Window:  # a clip shorter than the window is looped from its start
    frames = [buffer[(i - base) % len(buffer)] for i in range(start, start + length)]
    return Window(start, min(start + length, total),
                  {s: np.stack([f[s] for f in frames], axis=1) for s in frames[0]})

  for item in inputs:
    for i in range(len(item)):
      buffer.append({s: a[:, i] for s, a in item.arrays.items()})
      total += 1
      while (start := next_start()) is not None and start + length <= total:
        yield window(start)
        done = start
        if planned is not None:
          planned.popleft()
      keep = next_start()
      keep = total if keep is None else keep
      if planned is None:
        keep = min(keep, total - length)
      while buffer and base < keep:
        buffer.popleft()
        base += 1
  if planned:
    raise FrameCountError(f"windows starting at {list(planned)} end past the clip's {total} "
                         f"frames")
  if planned is not None or not total:
    return
  if done < 0 or done + length < total:  # shorter than one window (looped from its start),
    yield window(max(total - length, 0))  # or frames left over after the last window

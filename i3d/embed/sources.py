"""Sets of clips for FVD: video files, frame folders and `.npy` arrays, each clip its first
`num_frames` frames as stored (no frame-rate resampling: generated videos are frame sequences).

A set is a folder or one `.npy` file. In a folder (sorted by name, hidden entries skipped):
every subfolder is one clip of image frames (sorted by the numbers in their names), every `.npy`
holds one clip (T, H, W, 3) or many (N, T, H, W, 3), and every other file is a video OpenCV
reads. Frames are RGB, uint8 or floats in [0, 255]. A set can also be MediaSequence records
(`i3d preprocess --output_dir`, or one shard): each stored clip's RGB frames as stored (25 fps,
shorter side 256, before the crop). TensorFlow loads only for records.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import PIL.Image

from i3d._util import env, text
from i3d._util.files import check_regular
from i3d.errors import UserError
from i3d.inputs import decode

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
# Frames larger than this a side are refused before they are read (nothing generates them).
MAX_SIDE = 4096


@dataclasses.dataclass(frozen=True)
class ClipSource:
  """One clip: a video file, a frame folder, or clip `index` of a `.npy` array."""
  path: Path
  kind: str  # "video", "frames", "npy" or "records" (every clip of a shard)
  index: int | None = None

  @property
  def name(self) -> str:
    """How messages name the clip."""
    return f"{self.path}[{self.index}]" if self.index is not None else str(self.path)


def list_clips(root: str | os.PathLike) -> list[ClipSource]:
  """Every clip of a set (a folder or a `.npy` file), in a stable order."""
  root = Path(root)
  if not root.exists():
    raise UserError(f"{root}: no such file or folder")
  shards = _shards(root)
  if shards:
    return [ClipSource(shard, "records") for shard in shards]
  if not root.is_dir():
    check_regular(root)
    return _npy_clips(root) if root.suffix == ".npy" else [ClipSource(root, "video")]
  clips: list[ClipSource] = []
  for entry in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
    if entry.is_dir():
      clips.append(ClipSource(entry, "frames"))
    elif entry.suffix == ".npy":
      clips += _npy_clips(entry)
    elif entry.suffix.lower() in IMAGE_SUFFIXES:
      raise UserError(f"{root} holds image {entry.name}: put the frames of each clip in a "
                      f"subfolder of its own (one subfolder per clip)")
    else:
      clips.append(ClipSource(entry, "video"))
  if not clips:
    raise UserError(f"{root}: no clips (videos, frame folders or .npy files)")
  return clips


def _shards(root: Path) -> list[Path]:
  """The record shards of `root` when it is one or a folder holding them, else []."""
  names = [p.name for p in root.iterdir()] if root.is_dir() else [root.name]
  if not any(".tfrecord" in name for name in names):
    return []  # not records: TensorFlow stays unloaded
  from i3d.inputs import records  # pylint: disable=import-outside-toplevel
  if not root.is_dir():
    return [root] if records.is_shard_name(root.name) else []
  return records.list_shards(root)


def _open_npy(path: Path) -> np.ndarray:
  """A read-only memory map of a `.npy` clip array, its shape and type checked before reading."""
  check_regular(path)
  try:
    array = np.load(path, mmap_mode="r", allow_pickle=False)
  except (OSError, ValueError) as e:
    raise UserError(f"{path}: not a readable .npy array ({e})") from None
  if array.ndim not in (4, 5) or array.shape[-1] != 3 or min(array.shape) < 1:
    raise UserError(f"{path}: expected clips (N, T, H, W, 3) or one clip (T, H, W, 3); got "
                    f"shape {array.shape}")
  if max(array.shape[-3:-1]) > MAX_SIDE:
    raise UserError(f"{path}: frames of {array.shape[-2]}x{array.shape[-3]} are larger than "
                    f"{MAX_SIDE} pixels a side")
  if array.dtype not in (np.uint8, np.float16, np.float32, np.float64):
    raise UserError(f"{path}: expected uint8 or float frames in [0, 255]; got {array.dtype}")
  return array


def _npy_clips(path: Path) -> list[ClipSource]:
  """One source per clip of a `.npy` array; more than `$I3D_MAX_CLIPS` is a `UserError`."""
  array = _open_npy(path)
  if array.ndim == 4:
    return [ClipSource(path, "npy")]
  most = env.limit("I3D_MAX_CLIPS")
  if len(array) > most:
    raise UserError(f"{path}: its header declares {len(array)} clips, more than {most} "
                    f"($I3D_MAX_CLIPS); split the set or raise the limit")
  return [ClipSource(path, "npy", i) for i in range(len(array))]


def _natural_key(path: Path) -> list:
  """`frame_2.png` before `frame_10.png`."""
  return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _folder_frames(folder: Path, count: int) -> np.ndarray:
  images = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".")), key=_natural_key)[:count]
  if not images:
    raise UserError(f"{folder}: a clip folder with no image frames "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))})")
  frames: list[np.ndarray] = []
  for image in images:
    _check_image_header(image)
    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if bgr is None:
      raise UserError(f"{image}: not an image OpenCV can read")
    if frames and bgr.shape != frames[0].shape:
      raise UserError(f"{image}: {bgr.shape[1]}x{bgr.shape[0]} frame in a clip of "
                      f"{frames[0].shape[1]}x{frames[0].shape[0]} frames")
    frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
  return np.stack(frames)


def _check_image_header(image: Path) -> None:
  """A `UserError` unless `image` is a regular file whose header (read without decoding the
  pixels) declares at most `MAX_SIDE` pixels a side; formats Pillow cannot read pass on to
  OpenCV, whose own pixel bound applies."""
  check_regular(image)
  try:
    with PIL.Image.open(image) as opened:
      declared = opened.size
  except PIL.Image.DecompressionBombError as e:
    raise UserError(f"{image}: frames larger than {MAX_SIDE} pixels a side ({e}); refusing to "
                    f"decode it") from None
  except (OSError, ValueError, SyntaxError):
    return
  if max(declared) > MAX_SIDE:
    raise UserError(f"{image}: frames larger than {MAX_SIDE} pixels a side "
                    f"({declared[0]}x{declared[1]} declared); refusing to decode it")


def read_clip(source: ClipSource, num_frames: int) -> np.ndarray:
  """The first `num_frames` frames of a clip, (num_frames, H, W, 3) in [0, 255] (uint8 or float).

  A clip with fewer frames, non-finite or out-of-range values, or frames too large is a
  `UserError` naming it.
  """
  if source.kind == "video":
    frames = decode.first_frames(source.path, num_frames)
  elif source.kind == "frames":
    frames = _folder_frames(source.path, num_frames)
  else:
    array = _open_npy(source.path)
    frames = np.array(array[source.index][:num_frames] if source.index is not None
                      else array[:num_frames])
  return check_clip(frames, num_frames, source.name)


def check_clip(frames: np.ndarray, num_frames: int, name: str) -> np.ndarray:
  """`frames` cut to `num_frames`, refused when shorter, mis-shaped or outside [0, 255]."""
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[1:3], default=0) < 1:
    raise UserError(f"{name}: expected RGB frames (T, H, W, 3); got shape {frames.shape}")
  if len(frames) < num_frames:
    raise UserError(f"{name}: has {text.count(len(frames), 'frame')}, fewer than the "
                    f"{num_frames} each clip needs (--num_frames); every clip must be at least "
                    f"that long")
  if max(frames.shape[1:3]) > MAX_SIDE:
    raise UserError(f"{name}: frames larger than {MAX_SIDE} pixels a side")
  frames = frames[:num_frames]
  if frames.dtype != np.uint8:
    if not (np.issubdtype(frames.dtype, np.integer) or np.issubdtype(frames.dtype, np.floating)):
      raise UserError(f"{name}: frames must be real numbers; got {frames.dtype}")
    if not np.all(np.isfinite(frames)) or frames.min() < 0 or frames.max() > 255:
      raise UserError(f"{name}: frame values must be finite and in [0, 255] (uint8 RGB); got "
                      f"{frames.min()} to {frames.max()}")
  return frames


def iter_clips(sources: list[ClipSource], num_frames: int) -> Iterator[np.ndarray]:
  """The clips of `sources`, read one at a time (the shards of a records set together)."""
  shards = [s.path for s in sources if s.kind == "records"]
  if shards:
    yield from _record_clips(shards, num_frames)
  for source in sources:
    if source.kind != "records":
      yield read_clip(source, num_frames)


def _record_clips(shards: list[Path], num_frames: int) -> Iterator[np.ndarray]:
  """The stored RGB frames of every clip of `shards`, as `records.read_clips` decodes them; a
  damaged shard is a `UserError` naming it."""
  from i3d.inputs import records  # pylint: disable=import-outside-toplevel
  for item in records.read_clips(shards, ("rgb",), protocol=None):
    if isinstance(item, records.ReadError):
      for shard in shards:
        records.check_shard(shard, ("rgb",))
      raise UserError(f"records unreadable: {item.message}")
    yield check_clip(np.asarray(item.inputs["rgb"]), num_frames, f"{item.shard}:{item.info.key}")

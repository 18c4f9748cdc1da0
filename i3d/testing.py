"""Format-exact stand-ins for the released checkpoints, for tests and benchmarks.

The released data shards cannot be fetched offline, but their index files list every variable's
name, dtype and shape. `write_format_exact_checkpoint` writes a TF1-format checkpoint with exactly
those variables (optimizer slots included) filled with random values of sensible scale.
"""

import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf


def _random_value(name: str, shape: list[int], dtype: tf.DType, rng: np.random.Generator):
  """He-scaled conv weights, small offsets and means, variances near 1."""
  if dtype.is_integer:
    return np.array(rng.integers(0, 1000, size=shape), dtype=dtype.as_numpy_dtype)
  if name.endswith("moving_variance"):
    value = rng.uniform(0.5, 1.5, size=shape)
  elif name.endswith("/w"):
    fan_in = int(np.prod(shape[:-1]))
    value = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
  else:
    value = rng.normal(0.0, 0.1, size=shape)
  return value.astype(dtype.as_numpy_dtype)


def write_format_exact_checkpoint(index_prefix: str | Path, dest_dir: str | Path,
                                  seed: int = 0) -> Path:
  """Write `dest_dir/model.ckpt.{index,data-00000-of-00001}` like the one `index_prefix` lists.

  The released `checkpoint` state file (absolute paths of another machine) is copied along when
  it sits beside the index. Returns the new prefix.
  """
  reader = tf.train.load_checkpoint(str(index_prefix))
  shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
  rng = np.random.default_rng(seed)
  names = sorted(shapes)
  tensors = [tf.constant(_random_value(n, shapes[n], dtypes[n], rng)) for n in names]
  dest_dir = Path(dest_dir)
  dest_dir.mkdir(parents=True, exist_ok=True)
  prefix = dest_dir / "model.ckpt"
  tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=tensors)
  state = Path(index_prefix).parent / "checkpoint"
  if state.exists():
    shutil.copy(state, dest_dir / "checkpoint")
  return prefix


def write_clip(dest: Path, source: Path | None, seconds: float, size: tuple[int, int],
               seed: int = 0) -> Path:
  """A short MP4: the first `seconds` of `source` scaled to `size` (w, h) with ffmpeg, or, with no
  source, a generated 25 fps video of a bright square moving over noise."""
  import subprocess

  import cv2
  import imageio_ffmpeg
  dest.parent.mkdir(parents=True, exist_ok=True)
  if source is not None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i",
                    str(source), "-t", str(seconds), "-vf", f"scale={size[0]}:{size[1]}", "-an",
                    "-c:v", "mpeg4", "-q:v", "3", str(dest)], check=True)
    return dest
  rng = np.random.default_rng(seed)
  writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)  # type: ignore[attr-defined]
  step = rng.integers(2, 6, size=2)
  for t in range(round(seconds * 25)):
    frame = rng.integers(0, 80, size=(size[1], size[0], 3), dtype=np.uint8)
    x, y = (t * step) % (np.array(size) - 24)
    frame[y:y + 24, x:x + 24] = 230
    writer.write(frame)
  writer.release()
  return dest


def write_validation_set(root: Path, specs: list[tuple[str, str, object]], seconds: float = 0.5,
                         size: tuple[int, int] = (128, 96)) -> tuple[Path, Path]:
  """A Kinetics-style validation set: (annotations CSV, video dir) for (youtube_id, label, kind)
  specs, where kind is a source video path, "generated", "corrupt" (garbage bytes) or "missing"
  (annotated, no file). Clips are stored as `validation/label/{id}_000000_000010.mp4`."""
  from i3d.kinetics import Clip, write_annotations
  video_dir = Path(root) / "videos"
  clips = []
  for seed, (youtube_id, label, kind) in enumerate(specs):
    clip = Clip(youtube_id, 0, 10, "validation", label)
    clips.append(clip)
    dest = video_dir / clip.relpath
    if kind == "generated":
      write_clip(dest, None, seconds, size, seed)
    elif kind == "corrupt":
      dest.parent.mkdir(parents=True, exist_ok=True)
      dest.write_bytes(np.random.default_rng(seed).bytes(4096))
    elif kind != "missing":
      write_clip(dest, Path(str(kind)), seconds, size)
  return write_annotations(clips, Path(root) / "kinetics-400_val.csv"), video_dir

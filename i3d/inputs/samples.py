"""Model inputs saved as files: the released `.npy` arrays and their `.gif` visualisations."""

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from i3d._util import env
from i3d._util.files import check_npy_header, check_regular
from i3d.errors import UserError
from i3d.model.streams import check_clips

SAMPLE_NAME = "v_CricketShot_g04_c01"


def default_sample(stream: str) -> Path:
  """The released sample clip's visualisation for `stream` (rgb or flow) in the data folder."""
  return env.data_dir() / f"{SAMPLE_NAME}_{stream}.gif"


def load_sample(path: str | Path, stream: str) -> np.ndarray:
  """A (1, T, 224, 224, C) float32 clip in [-1, 1] from a released-style `.npy` or `.gif`."""
  path = Path(path)
  if not path.exists():
    raise UserError(f"{stream} sample {path} not found; pass an existing .npy or .gif")
  check_regular(path, f"{stream} sample {path}")
  if path.suffix.lower() == ".gif":
    clip = _decode_gif(path, stream)
  else:
    try:
      with open(path, "rb") as f:
        check_npy_header(f, os.path.getsize(path), f"{stream} sample {path}")
      clip = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
      raise UserError(f"{stream} sample {path} is not a readable .npy array ({e})") from None
  check_clips(clip, stream, f"{stream} sample {path}", min_frames=1)
  return clip.astype(np.float32)


def _decode_gif(path: Path, stream: str) -> np.ndarray:
  """Invert the released visualisation: rgb = x/255*2-1; flow = x[..., :2]/255 - 0.5."""
  try:
    frames = tf.io.decode_gif(tf.io.read_file(str(path))).numpy().astype(np.float32)
  except tf.errors.OpError as e:
    raise UserError(f"{stream} sample {path} is not a readable GIF ({e.message})") from None
  if stream == "rgb":
    return (frames / 255.0 * 2.0 - 1.0)[None]
  return (frames[..., :2] / 255.0 - 0.5)[None]

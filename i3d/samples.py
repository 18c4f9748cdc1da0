"""Model inputs saved as files: the released `.npy` arrays and their `.gif` visualisations."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from i3d.classifier import STREAM_CHANNELS
from i3d.errors import UserError
from i3d.paths import DATA_DIR

SAMPLE_NAME = "v_CricketShot_g04_c01"
DEFAULT_SAMPLES = {stream: DATA_DIR / f"{SAMPLE_NAME}_{stream}.gif" for stream in STREAM_CHANNELS}


def load_sample(path: str | Path, stream: str) -> np.ndarray:
  """A (1, T, 224, 224, C) float32 clip in [-1, 1] from a released-style `.npy` or `.gif`."""
  path = Path(path)
  if not path.is_file():
    raise UserError(f"{stream} sample {path} not found; pass an existing .npy or .gif")
  if path.suffix.lower() == ".gif":
    clip = _decode_gif(path, stream)
  else:
    try:
      clip = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
      raise UserError(f"{stream} sample {path} is not a readable .npy array ({e})") from None
  _check_clip(clip, path, stream)
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


def _check_clip(clip: np.ndarray, path: Path, stream: str) -> None:
  channels = STREAM_CHANNELS[stream]
  if clip.ndim != 5 or clip.shape[0] < 1 or clip.shape[2:] != (224, 224, channels):
    raise UserError(f"{stream} sample {path} has shape {clip.shape}; expected "
                    f"(1, frames, 224, 224, {channels}) as the released samples")
  if not np.issubdtype(clip.dtype, np.floating):
    raise UserError(f"{stream} sample {path} has dtype {clip.dtype}; expected float values "
                    f"in [-1, 1]")

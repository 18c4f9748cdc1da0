"""Model inputs saved as files: the released `.npy` arrays and their `.gif` visualisations."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from i3d._util import env
from i3d.errors import UserError
from i3d.model.streams import INPUT_SIZE, STREAM_CHANNELS

SAMPLE_NAME = "v_CricketShot_g04_c01"


def default_sample(stream: str) -> Path:
  """The released sample clip's visualisation for `stream` (rgb or flow) in the data folder."""
  return env.data_dir() / f"{SAMPLE_NAME}_{stream}.gif"


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
  expected = (INPUT_SIZE, INPUT_SIZE, channels)
  if clip.ndim != 5 or clip.shape[0] < 1 or clip.shape[2:] != expected:
    raise UserError(f"{stream} sample {path} has shape {clip.shape}; expected "
                    f"(1, frames, {INPUT_SIZE}, {INPUT_SIZE}, {channels}) as the released "
                    f"samples")
  if not np.issubdtype(clip.dtype, np.floating):
    raise UserError(f"{stream} sample {path} has dtype {clip.dtype}; expected float values "
                    f"in [-1, 1]")

"""Every environment variable the toolkit reads, and where it keeps its files.

Library code asks this module instead of reading `os.environ` itself, so each variable has one
meaning and one default, listed here and in the README.
"""

import os
from pathlib import Path

from i3d.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

# Read by TensorFlow and OpenCV when they load, so `set_library_defaults` runs on `import i3d`.
LIBRARY_DEFAULTS = {
    # TensorFlow's C++ start-up chatter (CUDA probing, CPU features) buries our one-line errors.
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # oneDNN runs I3D's 3D convolutions 2-3x faster on CPUs without AVX-512 too, where
    # TensorFlow leaves it off by default (BENCHMARKS.md); set it to 0 to opt out.
    "TF_ENABLE_ONEDNN_OPTS": "1",
    # FFmpeg's own lines ("moov atom not found") would repeat our one-line errors.
    "OPENCV_FFMPEG_LOGLEVEL": "-8",
}


def set_library_defaults() -> None:
  """Sets `LIBRARY_DEFAULTS` where the user has not set the variable."""
  for name, value in LIBRARY_DEFAULTS.items():
    os.environ.setdefault(name, value)


def data_dir() -> Path:
  """Label maps and the sample clip: `$I3D_DATA_DIR`, else the repository's `data/`."""
  return Path(os.environ.get("I3D_DATA_DIR", REPO_ROOT / "data"))


def checkpoint_dir() -> Path:
  """Released checkpoints: `$I3D_CHECKPOINT_DIR`, else the repository's `checkpoints/`."""
  return Path(os.environ.get("I3D_CHECKPOINT_DIR", REPO_ROOT / "checkpoints"))


def checkpoint_base_url() -> str | None:
  """A mirror of the released checkpoints: `$I3D_CHECKPOINT_BASE_URL`, or None for GitHub's."""
  return os.environ.get("I3D_CHECKPOINT_BASE_URL") or None


def kinetics_dir() -> Path:
  """Fetched Kinetics annotation files: `$I3D_KINETICS_DIR`, else `~/.cache/i3d/kinetics`."""
  return Path(os.environ.get("I3D_KINETICS_DIR", Path.home() / ".cache" / "i3d" / "kinetics"))


# Bounds on untrusted input, each overridable by its environment variable (README, "Bad input").
LIMITS = {
    # Bytes of one downloaded file (a CVDF Kinetics shard is about 2 GB; checkpoints ~50 MB).
    "I3D_MAX_DOWNLOAD_BYTES": 16 << 30,
    # Bytes of one clip inside a downloaded shard (Kinetics clips are a few MB).
    "I3D_MAX_CLIP_BYTES": 1 << 30,
    # 25 fps frames of one video or trim window (9000 = 6 minutes); trim longer videos.
    "I3D_MAX_FRAMES": 9000,
    # Pixels of one decoded frame (8K UHD is 33 million).
    "I3D_MAX_PIXELS": 40_000_000,
    # Longer side over shorter side of a frame (the resize to 256 scales the long side too).
    "I3D_MAX_ASPECT_RATIO": 8,
}


def limit(name: str) -> int:
  """The bound `name` of `LIMITS`: `$name` when set (a positive whole number), else its default."""
  value = os.environ.get(name)
  if value is None or not value.strip():
    return LIMITS[name]
  try:
    number = int(value)
  except ValueError:
    number = 0
  if number < 1:
    raise UserError(f"${name}={value!r} is not a positive whole number; unset it for the "
                    f"default {LIMITS[name]}")
  return number

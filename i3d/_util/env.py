"""Every environment variable the toolkit reads, and where it keeps its files.

Library code asks this module instead of reading `os.environ` itself, so each variable has one
meaning and one default, listed here and in the README.
"""

import os
from pathlib import Path

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
  """Sets `LIBRARY_DEFAULTS` where the user has not set the variable, and points TensorFlow's
  persistent XLA compilation cache at `xla_cache_dir()`: `$I3D_XLA_CACHE_DIR` replaces a cache
  directory in `TF_XLA_FLAGS`, the default one does not."""
  for name, value in LIBRARY_DEFAULTS.items():
    os.environ.setdefault(name, value)
  flag, cache = "--tf_xla_persistent_cache_directory=", xla_cache_dir()
  flags = os.environ.get("TF_XLA_FLAGS", "").split()
  if "I3D_XLA_CACHE_DIR" in os.environ or not any(f.startswith(flag) for f in flags):
    flags = [f for f in flags if not f.startswith(flag)] + ([f"{flag}{cache}"] if cache else [])
    os.environ["TF_XLA_FLAGS"] = " ".join(flags)


def xla_cache_dir() -> Path | None:
  """Compiled XLA programs (our TV-L1 per frame size), reused by later processes:
  `$I3D_XLA_CACHE_DIR`, else `~/.cache/i3d/xla`; None (no cache) when it is set to ""."""
  value = os.environ.get("I3D_XLA_CACHE_DIR", str(Path.home() / ".cache" / "i3d" / "xla"))
  return Path(value) if value else None


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

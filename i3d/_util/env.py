"""Every environment variable the toolkit reads, and where it keeps its files.

Library code asks this module instead of reading `os.environ` itself, so each variable has one
meaning and one default, listed here and in docs/environment.md. Nothing here runs on import:
the entry points (the `i3d` command, `evaluate_sample.py`) call `set_library_defaults` before
TensorFlow loads; a library user who wants the same quiet start calls it too.
"""

import contextlib
import importlib.abc
import importlib.resources
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from i3d._util import cpu
from i3d.errors import UserError

# Read by TensorFlow and OpenCV when they load, so `set_library_defaults` runs on `import i3d`.
LIBRARY_DEFAULTS = {
    # TensorFlow's C++ start-up chatter (CUDA probing such as `failed call to cuInit`, CPU
    # features) buries our one-line errors; `I3D_TF_LOGS=1` shows it.
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # oneDNN runs I3D's 3D convolutions 2-3x faster on CPUs without AVX-512 too, where
    # TensorFlow leaves it off by default (BENCHMARKS.md); set it to 0 to opt out.
    "TF_ENABLE_ONEDNN_OPTS": "1",
    # FFmpeg's own lines ("moov atom not found") would repeat our one-line errors.
    "OPENCV_FFMPEG_LOGLEVEL": "-8",
}
# Set by `I3D_TF_LOGS=1` instead: TensorFlow's own logs, C++ and Python, all levels.
TF_LOG_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "0"}


def _flag(name: str) -> bool | None:
  """A boolean variable: True for 1/true/yes, False for 0/false/no, None when unset or empty."""
  value = os.environ.get(name, "").strip().lower()
  if not value:
    return None
  return value not in ("0", "false", "no", "off")


def tf_logs() -> bool:
  """`I3D_TF_LOGS=1`: show TensorFlow's start-up lines and Python log messages."""
  return bool(_flag("I3D_TF_LOGS"))


def offline() -> bool:
  """`I3D_OFFLINE=1` (or `--offline`): never touch the network; missing files are errors."""
  return bool(_flag("I3D_OFFLINE"))


def progress() -> bool | None:
  """`I3D_PROGRESS`: 1 forces progress output on, 0 (or `--quiet`) off; unset: on a terminal."""
  return _flag("I3D_PROGRESS")


def set_library_defaults() -> None:
  """Sets `LIBRARY_DEFAULTS` where the user has not set the variable, points TensorFlow's
  persistent XLA compilation cache at `xla_cache_dir()` (`$I3D_XLA_CACHE_DIR` replaces a cache
  directory in `TF_XLA_FLAGS`, the default one does not) and quiets TensorFlow.

  Unless `I3D_TF_LOGS` is set, TensorFlow's Python logger shows errors only, and the lines its
  shared libraries write while they load (before any log level applies: the oneDNN and CUDA
  banners) are held back and shown only if the import fails.
  """
  defaults = {**LIBRARY_DEFAULTS, **TF_LOG_DEFAULTS} if tf_logs() else LIBRARY_DEFAULTS
  for name, value in defaults.items():
    os.environ.setdefault(name, value)
  flag, cache = "--tf_xla_persistent_cache_directory=", xla_cache_dir()
  flags = os.environ.get("TF_XLA_FLAGS", "").split()
  if "I3D_XLA_CACHE_DIR" in os.environ or not any(f.startswith(flag) for f in flags):
    flags = [f for f in flags if not f.startswith(flag)] + ([f"{flag}{cache}"] if cache else [])
    os.environ["TF_XLA_FLAGS"] = " ".join(flags)
  if tf_logs() or "tensorflow" in sys.modules:
    return
  logging.getLogger("tensorflow").setLevel(logging.ERROR)
  if not any(isinstance(f, _QuietImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _QuietImport())


def cache_dir() -> Path:
  """The toolkit's per-user cache: `$XDG_CACHE_HOME/i3d`, else `~/.cache/i3d`."""
  base = os.environ.get("XDG_CACHE_HOME", "").strip()
  return (Path(base) if base else Path.home() / ".cache") / "i3d"


def xla_cache_dir() -> Path | None:
  """Compiled XLA programs (our TV-L1 per frame size), reused by later processes:
  `$I3D_XLA_CACHE_DIR`, else `cache_dir()/xla/CPU` where CPU names this machine's instruction
  set (programs compiled for one CPU can crash on another sharing the home folder); None (no
  cache) when it is set to ""."""
  default = cache_dir() / "xla" / cpu.machine_key()
  value = os.environ.get("I3D_XLA_CACHE_DIR", str(default))
  return Path(value) if value else None


class _QuietImport(importlib.abc.MetaPathFinder):
  """Finds `tensorflow` the usual way, once, and loads it with file descriptor 2 held back."""

  def find_spec(self, fullname, path=None, target=None):
    if fullname != "tensorflow":
      return None
    sys.meta_path.remove(self)
    spec = importlib.util.find_spec(fullname)
    if spec is not None and spec.loader is not None:
      spec.loader = _QuietLoader(spec.loader)
    return spec


class _QuietLoader(importlib.abc.Loader):
  """Runs another loader's `exec_module` with its stderr output held back."""

  def __init__(self, loader):
    self._loader = loader

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module) -> None:
    with _stderr_held():
      self._loader.exec_module(module)

  def __getattr__(self, name: str):
    return getattr(self._loader, name)


@contextlib.contextmanager
def _stderr_held() -> Iterator[None]:
  """Sends what is written to file descriptor 2 to a temporary file; replays it on an error."""
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as held:
    os.dup2(held.fileno(), 2)
    failed = True
    try:
      yield
      failed = False
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      if failed:
        held.seek(0)
        os.write(2, held.read())


def data_dir() -> Path:
  """Label maps and the sample clip: `$I3D_DATA_DIR`, else the copy inside the package."""
  value = os.environ.get("I3D_DATA_DIR", "").strip()
  return Path(value) if value else Path(str(importlib.resources.files("i3d") / "data"))


def checkpoint_dir() -> Path:
  """Released checkpoints: `$I3D_CHECKPOINT_DIR`, else `cache_dir()/checkpoints`
  (`~/.cache/i3d/checkpoints`). A `--checkpoint_dir` flag or argument wins over both."""
  value = os.environ.get("I3D_CHECKPOINT_DIR", "").strip()
  return Path(value) if value else cache_dir() / "checkpoints"


def checkpoint_base_url() -> str | None:
  """A mirror of the released checkpoints: `$I3D_CHECKPOINT_BASE_URL`, or None for GitHub's."""
  return os.environ.get("I3D_CHECKPOINT_BASE_URL") or None


def kinetics_dir() -> Path:
  """Fetched Kinetics annotation files: `$I3D_KINETICS_DIR`, else `cache_dir()/kinetics`."""
  value = os.environ.get("I3D_KINETICS_DIR", "").strip()
  return Path(value) if value else cache_dir() / "kinetics"


# Bounds on untrusted input, each overridable by its environment variable (README, "Bad input").
LIMITS = {
    # Bytes of one downloaded file (a CVDF Kinetics shard is about 2 GB; checkpoints ~50 MB).
    "I3D_MAX_DOWNLOAD_BYTES": 16 << 30,
    # Bytes of one clip inside a downloaded shard (Kinetics clips are a few MB).
    "I3D_MAX_CLIP_BYTES": 1 << 30,
    # 25 fps frames of one video or trim window: a guard against timestamp bombs (a header or
    # timestamps claiming days of video), not a memory limit; inputs stream (4 hours at 25 fps).
    "I3D_MAX_FRAMES": 4 * 3600 * 25,
    # Pixels of one decoded frame (8K UHD is 33 million).
    "I3D_MAX_PIXELS": 40_000_000,
    # Longer side over shorter side of a frame (the resize to 256 scales the long side too).
    "I3D_MAX_ASPECT_RATIO": 8,
    # Declared (decompressed) size over stored size of a compressed `.npz` member; caches the
    # toolkit writes are stored uncompressed (ratio 1), model inputs rarely compress 10x.
    "I3D_MAX_COMPRESSION_RATIO": 100,
    # Clips of one set (FVD: a folder or a `.npy` array), listed before any is read.
    "I3D_MAX_CLIPS": 1_000_000,
}


# Settings that trade memory for speed, each overridable by its environment variable.
SETTINGS = {
    # The most frames of a whole clip in one pass of the network (every Kinetics clip: 10 s at
    # up to 30 fps); longer clips run in overlapping chunks (`i3d.model.chunks`), with the same
    # logits; memory grows with this, not with the clip.
    "I3D_CHUNK_FRAMES": 320,
}


def limit(name: str) -> int:
  """The bound `name` of `LIMITS` (or setting of `SETTINGS`): `$name` when set (a positive
  whole number), else its default."""
  defaults = {**LIMITS, **SETTINGS}
  value = os.environ.get(name)
  if value is None or not value.strip():
    return defaults[name]
  try:
    number = int(value)
  except ValueError:
    number = 0
  if number < 1:
    raise UserError(f"${name}={value!r} is not a positive whole number; unset it for the "
                    f"default {defaults[name]}")
  return number


def available_memory() -> int:
  """Bytes of memory this machine can give now (`MemAvailable` of /proc/meminfo, else the
  physical memory): the bound on what one request may allocate."""
  try:
    with open("/proc/meminfo", encoding="ascii") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  try:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (OSError, ValueError):
    return 1 << 34


# Memory one local worker process takes with TensorFlow, OpenCV and a model loaded (measured:
# 0.5-1.2 GB for `i3d preprocess` and Beam's DirectRunner workers).
WORKER_MEMORY = 1 << 30


def check_workers(workers: int, flag: str = "--workers") -> None:
  """A `UserError` unless `workers` local processes fit in this machine's free memory."""
  if workers < 1:
    raise UserError(f"{flag} must be at least 1, got {workers}")
  most = max(1, available_memory() // WORKER_MEMORY)
  if workers > most:
    raise UserError(f"{flag} {workers}: each local worker process needs about "
                    f"{WORKER_MEMORY >> 30} GiB and this machine has memory free for {most}; "
                    f"use at most {most}")

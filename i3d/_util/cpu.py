"""The CPU: its cores and feature flags, read from /proc/cpuinfo (no TensorFlow)."""

import hashlib
import os
from pathlib import Path
from typing import Optional

CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Optional[Path] = None) -> Optional[frozenset[str]]:
  """The feature flags of the first CPU in `cpuinfo` (default /proc/cpuinfo), or None where they
  cannot be read (not Linux)."""
  try:
    text = (cpuinfo or CPUINFO).read_text(encoding="utf-8", errors="replace")
  except OSError:
    return None
  for line in text.splitlines():
    key, _, value = line.partition(":")
    if key.strip().lower() in ("flags", "features"):
      return frozenset(value.split())
  return None


def machine_key() -> str:
  """A short name for this CPU's instruction set: code compiled for one key may not run on a
  machine of another (XLA compiles for the host's features)."""
  flags = cpu_flags()
  if flags is None:
    return "unknown-cpu"
  return hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:12]


def cores() -> int:
  """CPU cores this process may run on."""
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

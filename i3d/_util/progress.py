"""Progress of long work and warnings, on stderr: the one place bars, status notes and warning
lines are made.

Shown when stderr is a terminal; `I3D_PROGRESS=1` forces it on (tests, logs), `I3D_PROGRESS=0`
turns it off, and a command's `--quiet` calls `set_enabled(False)`, which wins over both.
While an `outer` bar runs (a batch job's bar over videos), the per-step bars and notes of the
work inside it stay hidden, so parallel workers do not draw over each other.
"""

import logging
import sys
import threading

from tqdm import tqdm

from i3d._util import env

_outer_bars = 0
_lock = threading.Lock()
_chosen: bool | None = None


def set_enabled(show: bool | None) -> None:
  """Turns progress output on or off for this process (None: back to `I3D_PROGRESS` and the
  terminal test); the entry points call it for `--quiet`."""
  global _chosen
  _chosen = show


def enabled() -> bool:
  """Whether progress output is wanted: `set_enabled`'s choice, else `I3D_PROGRESS`, else
  whether stderr is a terminal."""
  forced = env.progress() if _chosen is None else _chosen
  return sys.stderr.isatty() if forced is None else forced


def _shown() -> bool:
  return enabled() and not _outer_bars


def bar(total: int | None = None, desc: str = "", unit: str = "it", leave: bool = False,
        show: bool = True, **options) -> tqdm:
  """A tqdm bar on stderr (a silent one when progress is off or not `show`); use it as a context
  manager."""
  return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not (show and _shown()),
              dynamic_ncols=True, leave=leave, **options)


def outer(total: int | None = None, desc: str = "", unit: str = "it", show: bool = True,
          **options) -> tqdm:
  """A bar kept on screen when done that hides other bars and notes until it is closed."""
  return _OuterBar(total=total, desc=desc, unit=unit, file=sys.stderr, leave=True,
                   disable=not (show and _shown()), dynamic_ncols=True, **options)


class _OuterBar(tqdm):
  """A tqdm bar counted in `_outer_bars` while open."""

  def __init__(self, *args, **kwargs):
    global _outer_bars
    super().__init__(*args, **kwargs)
    with _lock:
      _outer_bars += 1
    self._counted = True

  def close(self) -> None:
    global _outer_bars
    if getattr(self, "_counted", False):
      self._counted = False
      with _lock:
        _outer_bars -= 1
    super().close()


def note(message: str) -> None:
  """One status line on stderr (what a long step is doing), when progress output is wanted."""
  if _shown():
    tqdm.write(message, file=sys.stderr)


class _BarSafeHandler(logging.Handler):
  """Writes log lines to the current stderr above any progress bar."""

  def emit(self, record: logging.LogRecord) -> None:
    tqdm.write(self.format(record), file=sys.stderr)


def warn(message: str) -> None:
  """A warning: the line `i3d: warning: MESSAGE` on stderr (above any bar, whatever the progress
  settings), also a record of the `i3d` logger for programs that collect logs."""
  logger = logging.getLogger("i3d")
  with _lock:
    if not any(isinstance(h, _BarSafeHandler) for h in logger.handlers):
      logger.addHandler(_BarSafeHandler())
  logger.warning("i3d: warning: %s", message)

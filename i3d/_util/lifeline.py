"""Worker processes that die with the process that started them.

A launcher killed with `kill -9` runs no clean-up, so its pool workers (about 1 GB each) and, as
long as they hold its pipe, multiprocessing's resource tracker would idle on. Each worker asks
Linux for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`) and also watches its parent itself
(elsewhere, and against the race where the parent died before the request was made).

A worker started through a shell (`sh -c 'python -m ...'`: how Beam's local runner starts its
workers) has the shell as its parent, which outlives the launcher; such a shell is looked
through, and the worker watches the shell's parent too. That launcher runs the worker's Python
(Beam starts its own `sys.executable`): a shell whose parent runs another program (init, once
the launcher died before the worker got here) has no launcher left.
"""

import ctypes
import ctypes.util
import os
import shlex
import signal
import threading
from pathlib import Path

_PR_SET_PDEATHSIG = 1
# How often the watchdog looks at its parent, in seconds.
POLL_SECONDS = 1.0


def die_with_parent() -> None:
  """Makes this process exit as soon as its parent process (or, when the parent is a shell
  running this process's own command line, the shell's parent) is gone (call it in a worker)."""
  parent = os.getppid()
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
  except (OSError, AttributeError):
    pass  # not Linux: the watchdog alone
  shell = parent if _runs_me(parent) else None
  launcher = _parent_of(shell) if shell is not None else None

  def gone() -> bool:
    return os.getppid() != parent or (shell is not None and _parent_of(shell) != launcher)

  if gone() or (launcher is not None and _program(launcher) != _program("self")):
    os._exit(1)

  def watch() -> None:
    while not stopped.wait(POLL_SECONDS):
      if gone():
        os._exit(1)

  stopped = threading.Event()
  threading.Thread(target=watch, name="i3d-lifeline", daemon=True).start()


def _command_line(pid: int | str) -> list[str]:
  """The arguments process `pid` was started with ([] where /proc cannot tell)."""
  try:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
  except OSError:
    return []
  return [os.fsdecode(a) for a in raw.split(b"\0")[:-1]]


def _runs_me(pid: int) -> bool:
  """Whether process `pid` is a shell started as `SHELL -c 'THIS PROCESS'S COMMAND LINE'`."""
  shell = _command_line(pid)
  if len(shell) != 3 or shell[1] != "-c":
    return False
  try:
    return shlex.split(shell[2]) == _command_line("self")
  except ValueError:
    return False


def _program(pid: int | str) -> str | None:
  """The executable process `pid` runs (None where /proc does not tell)."""
  try:
    return os.readlink(f"/proc/{pid}/exe")
  except OSError:
    return None


def _parent_of(pid: int) -> int | None:
  """The parent process of `pid` (None once `pid` is gone)."""
  try:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
  except (OSError, IndexError, ValueError):
    return None

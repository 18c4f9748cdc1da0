"""Worker processes that die with the process that started them.

A launcher killed with `kill -9` runs no clean-up, so its pool workers (about 1 GB each) and, as
long as they hold its pipe, multiprocessing's resource tracker would idle on. Each worker asks
Linux for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`) and also watches its parent itself
(elsewhere, and against the race where the parent died before the request was made).
"""

import ctypes
import ctypes.util
import os
import signal
import threading

_PR_SET_PDEATHSIG = 1
# How often the watchdog looks at its parent, in seconds.
POLL_SECONDS = 1.0


def die_with_parent() -> None:
  """Makes this process exit as soon as its parent process is gone (call it in a worker)."""
  parent = os.getppid()
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
  except (OSError, AttributeError):
    pass  # not Linux: the watchdog alone
  if os.getppid() != parent:
    os._exit(1)

  def watch() -> None:
    while not stopped.wait(POLL_SECONDS):
      if os.getppid() != parent:
        os._exit(1)

  stopped = threading.Event()
  threading.Thread(target=watch, name="i3d-lifeline", daemon=True).start()

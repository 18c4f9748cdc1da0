"""Lines kept off standard error: a filter on file descriptor 2 that also holds for the processes
started while it is on (they inherit the descriptor), such as Beam's local workers."""

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator

# How long the filter waits, once off, for writers it started to let go (a worker still running).
DRAIN_SECONDS = 5.0
_CHUNK = 1 << 16


@contextlib.contextmanager
def filtered(drop: Callable[[bytes], object]) -> Iterator[None]:
  """Passes on what is written to file descriptor 2 meanwhile, by this process and its children,
  a line at a time, without the lines (no line end) that `drop` picks."""
  sys.stderr.flush()
  terminal = os.dup(2)
  read, write = os.pipe()
  os.dup2(write, 2)  # inherited by the children started meanwhile; `read` and `terminal` are not
  os.close(write)
  relay = threading.Thread(target=_relay, args=(read, os.dup(terminal), drop),
                           name="i3d-stderr", daemon=True)
  relay.start()
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(terminal, 2)  # the relay ends once children still holding the pipe let go too
    os.close(terminal)
    relay.join(DRAIN_SECONDS)


def _relay(read: int, out: int, drop: Callable[[bytes], object]) -> None:
  """Copies the lines read from `read` to `out` unless `drop` picks them, until the end of the
  input (read to the end even once `out` fails, so that no writer blocks); closes both."""
  pending, shown = b"", True
  try:
    while chunk := os.read(read, _CHUNK):
      *lines, pending = (pending + chunk).split(b"\n")
      if len(pending) >= _CHUNK:  # no line end in sight: pass it on as it is
        lines, pending = [*lines, pending], b""
      kept = b"".join(line + b"\n" for line in lines if not drop(line))
      shown = shown and _show(out, kept)
    if shown and pending and not drop(pending):
      _show(out, pending)
  finally:
    os.close(read)
    os.close(out)


def _show(out: int, data: bytes) -> bool:
  """Writes all of `data` to `out`; False when it cannot (the terminal is gone)."""
  try:
    while data:
      data = data[os.write(out, data):]
    return True
  except OSError:
    return False

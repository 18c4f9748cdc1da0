"""Files that are never half written: a reader sees the old content or the new, nothing between."""

import contextlib
import ctypes
import errno
import hashlib
import json
import math
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import filelock
import numpy as np

from i3d.errors import UserError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
  """A temporary file name beside `path` for a writer that needs a name (e.g. TFRecordWriter);
  on success the file is fsynced and renamed onto `path`.

  On an exception the temporary file is removed and `path` is left as it was.
  """
  path = Path(path)
  temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
  try:
    temporary.unlink(missing_ok=True)  # a link planted under the name is never written through
    yield temporary
    with open(temporary, "rb") as f:
      os.fsync(f.fileno())
    os.replace(temporary, path)
  finally:
    temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
  """Opens a temporary file beside `path`; on success it is fsynced and renamed onto `path`."""
  encoding = None if "b" in mode else "utf-8"
  with atomic_path(path) as temporary, open(temporary, mode, encoding=encoding) as f:
    yield f


def fsync_tree(folder: Path) -> None:
  """Flushes every file under `folder`, and the folders themselves, to disk."""
  for root, _, names in os.walk(folder):
    for name in names:
      with open(os.path.join(root, name), "rb") as f:
        os.fsync(f.fileno())
    _fsync_folder(root)


def _fsync_folder(folder: str | Path) -> None:
  fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


_RENAME_EXCHANGE = 2  # renameat2's flag (Linux 3.15+): swap two names in one step
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
  """Swaps the names `first` and `second` atomically; False where the system cannot."""
  renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
  if renameat2 is None:
    return False
  renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                        ctypes.c_uint]
  if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
               _RENAME_EXCHANGE) == 0:
    return True
  error = ctypes.get_errno()
  if error in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
    return False
  raise OSError(error, os.strerror(error), str(second))


def staging_folder(target: Path) -> Path:
  """An empty folder `.NAME.tmp` beside `target` to build its replacement in (`replace_folder`);
  what an earlier, killed attempt left there is removed first."""
  staging = target.with_name(f".{target.name}.tmp")
  shutil.rmtree(staging, ignore_errors=True)
  staging.mkdir(parents=True)
  return staging


def replace_folder(staging: Path, target: Path) -> None:
  """Puts the finished folder `staging` in the place of `target` (absent, or a folder replaced
  whole), so that a reader, or a kill at any moment, finds the old folder or the new one.

  `staging` is flushed to disk first. An existing `target` is swapped with `staging` in one
  step (Linux's `renameat2` exchange) and then removed; where the system cannot swap, it is first
  moved to `.NAME.old` (for an instant there is no `target`).
  """
  fsync_tree(staging)
  old = target.with_name(f".{target.name}.old")
  if not target.exists():
    staging.rename(target)
  elif _exchange(staging, target):
    shutil.rmtree(staging)
  else:
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    staging.rename(target)
  shutil.rmtree(old, ignore_errors=True)  # also what a kill between those two renames left
  _fsync_folder(target.parent)


def open_no_follow(path: str | Path, flags: int, mode: int = 0o644) -> int:
  """A descriptor of the regular file `path` opened with `flags` (`os.O_*`) without following a
  symbolic link and without blocking on a named pipe: a link (a planted one would have the write
  land elsewhere), a folder, a pipe or a device is a `UserError` naming `path`."""
  try:
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
  except OSError as e:
    if e.errno == errno.ELOOP:
      raise UserError(f"{path} is a symbolic link; refusing to read or write through it (remove "
                      f"the link)") from None
    if e.errno in (errno.EISDIR, errno.ENXIO):
      raise UserError(f"{path}: not a regular file; remove it or choose another folder") from None
    raise
  if not stat.S_ISREG(os.fstat(fd).st_mode):
    os.close(fd)
    raise UserError(f"{path}: not a regular file; remove it or choose another folder")
  os.set_blocking(fd, True)
  return fd


def check_regular(path: str | Path, name: str | None = None) -> None:
  """A `UserError` naming `name` (default `path`) unless `path` is a regular file (links to one
  are fine): opening a named pipe would block forever, a device could be endless."""
  try:
    mode = os.stat(path).st_mode
  except FileNotFoundError:
    raise UserError(f"{name or path}: no such file") from None
  except OSError as e:
    raise UserError(f"{name or path}: cannot read ({e.strerror})") from None
  if not stat.S_ISREG(mode):
    kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode)
            else "a device or socket")
    raise UserError(f"{name or path}: {kind}, not a regular file; give a file")


def write_json(path: str | Path, data: object) -> None:
  """Writes `data` as indented strict JSON (NaN and infinity are refused), atomically."""
  with atomic_write(path) as f:
    json.dump(data, f, indent=1, allow_nan=False)


def inside(root: str | Path, *parts: str | os.PathLike) -> Path:
  """`root` joined with `parts`, refused unless it stays strictly inside `root`.

  The check is on the normalised path (`..` and absolute parts resolved), so names from files
  or the network never lead a write or delete outside its folder; links the user made inside
  `root` are followed as usual.
  """
  base = os.path.normpath(os.path.abspath(root))
  path = os.path.normpath(os.path.join(base, *parts))
  if os.path.commonpath([base, path]) != base or path == base:
    raise UserError(f"{os.path.join(root, *parts)} lies outside {root}; refusing to write or "
                    f"delete there (a name in an annotation file or from a server is unsafe)")
  return Path(path)


def check_npy_header(f: IO[bytes], size: int, name: str) -> None:
  """A `UserError` unless the `.npy` data in `f` (`size` bytes in all) holds what its header claims.

  Read before loading, so a header claiming terabytes is refused instead of allocated. `f` is
  left after the header.
  """
  readers = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}
  try:
    major, _ = np.lib.format.read_magic(f)
    shape, _, dtype = readers.get(major, readers[2])(f)
  except (ValueError, OSError) as e:
    raise UserError(f"{name}: not a readable .npy array ({e})") from None
  claimed = math.prod(shape) * dtype.itemsize
  if claimed > size - f.tell():
    raise UserError(f"{name}: its header claims a {shape} {dtype} array ({claimed} bytes) but "
                    f"the file has {size} bytes; the file is damaged or not an array")


def file_sha256(path: Path) -> str:
  """SHA-256 of a file's bytes, read a block at a time."""
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "sha256").hexdigest()


@contextlib.contextmanager
def making(target: Path, what: str = "folder") -> Iterator[None]:
  """Holds `.NAME.lock` beside `target` while it is made, so that concurrent processes take turns
  (the lock file is removed at the end); the folders made for `target` are removed again when
  the work fails, so a failed attempt leaves none behind.

  Raises:
    UserError: the folder cannot be written (`what` names it in the message).
  """
  created = [p for p in (target, *target.parents) if not p.exists()]
  lock = filelock.FileLock(str(target.with_name(f".{target.name}.lock")))
  done = False
  try:
    try:
      target.parent.mkdir(parents=True, exist_ok=True)
      lock.acquire()
    except OSError as e:
      raise UserError(f"cannot write to {target.parent} ({e.strerror or e}); choose a writable "
                      f"{what}") from None
    try:
      yield
      done = True
    finally:
      Path(lock.lock_file).unlink(missing_ok=True)  # waiters see the unlinked file and retry
      lock.release()
  finally:
    if not done:
      remove_empty(created)


def remove_empty(folders: list[Path]) -> None:
  """Removes those of `folders` (deepest first) that are empty: what a failed attempt made."""
  for folder in folders:
    try:
      folder.rmdir()
    except FileNotFoundError:  # never made after all
      continue
    except OSError:  # not empty (a resumable .part file), or not ours to remove
      return
# Failures of the machine, not of the input: a rerun once the cause is gone may succeed.
# EFBIG: a file over the size limit of the process (`ulimit -f`) or of the filesystem.
ENVIRONMENTAL_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EACCES, errno.EPERM, errno.EROFS,
    errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.ETIMEDOUT, errno.ECONNRESET, errno.ESTALE,
    errno.EAGAIN})
# Exceptions (by class name: TensorFlow's and the process pool's are not imported here) that say
# the same: memory or disk exhausted, a service or a worker process gone.
_ENVIRONMENTAL_TYPES = frozenset({"MemoryError", "ResourceExhaustedError", "UnavailableError",
                                  "BrokenProcessPool", "BrokenPipeError"})


def environmental(error: BaseException) -> bool:
  """Whether `error`, or an error that led to it, is the machine's fault (a full disk, a quota, an
  I/O error, permissions, memory, a killed worker) rather than the input's: work that failed so is
  retried, never recorded as the item's failure."""
  seen: set[int] = set()
  current: BaseException | None = error
  while current is not None and id(current) not in seen:
    seen.add(id(current))
    # The message may give the errno only in the system's words ("No space left on device"):
    # TensorFlow's errors do, and those Beam relays from a worker.
    if (isinstance(current, OSError) and current.errno in ENVIRONMENTAL_ERRNOS
        or type(current).__name__ in _ENVIRONMENTAL_TYPES
        or any(os.strerror(e) in str(current) for e in ENVIRONMENTAL_ERRNOS)):
      return True
    current = current.__cause__ or current.__context__
  return False

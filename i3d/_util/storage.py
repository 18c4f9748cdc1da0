"""Files on local disks or on any filesystem `tf.io.gfile` reads (gs://, s3://, hdfs://, ...).

Distributed runs keep paths as strings (a `Path` folds the `//` of `gs://bucket`). Local paths go
through `files.atomic_path`; elsewhere a file is written under a temporary name and renamed, so
a reader never sees half of it either. TensorFlow is imported only for non-local paths.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import posixpath
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import filelock

from i3d._util.files import atomic_path as local_atomic_path
from i3d._util.files import inside as local_inside
from i3d.errors import UserError

TEMPORARY = ".*.tmp*"  # what `atomic_path` and `files.atomic_path` name their temporary files


def is_remote(path: str | os.PathLike) -> bool:
  """Whether `path` names a filesystem other than the local one (it has a scheme://)."""
  return "://" in str(path)


def join(root: str | os.PathLike, *parts: str) -> str:
  """`root/part/...` for local and remote roots alike (`join(root)`: the folder `root` as a
  string, a local path as `Path` spells it)."""
  if is_remote(root):
    return posixpath.join(str(root), *parts)
  return str(Path(root).joinpath(*parts))


def _gfile():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile


def exists(path: str) -> bool:
  """Whether `path` exists."""
  return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def makedirs(path: str) -> None:
  """Creates the folder `path` and its parents."""
  if is_remote(path):
    _gfile().makedirs(path)
  else:
    os.makedirs(path, exist_ok=True)


def read_bytes(path: str) -> bytes:
  """The content of `path`."""
  with (_gfile().GFile if is_remote(path) else open)(path, "rb") as f:
    return f.read()


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """A temporary name beside `path` for a writer that needs a name (e.g. TFRecordWriter); on
  success it is renamed onto `path` (local files are fsynced first: `files.atomic_path`). On an
  exception the temporary file is removed and `path` is left as it was."""
  if not is_remote(path):
    with local_atomic_path(path) as local:
      yield str(local)
    return
  gfile = _gfile()
  temporary = f"{posixpath.dirname(path)}/.{posixpath.basename(path)}.tmp{uuid.uuid4().hex}"
  try:
    yield temporary
    gfile.rename(temporary, path, overwrite=True)
  finally:
    if gfile.exists(temporary):
      gfile.remove(temporary)


def write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` so that readers see the old content or all of the new."""
  opener = _gfile().GFile if is_remote(path) else open
  with atomic_path(path) as temporary, opener(temporary, "wb") as f:
    f.write(data)


def remove(path: str) -> None:
  """Removes the file `path` if it exists."""
  if not is_remote(path):
    Path(path).unlink(missing_ok=True)
  elif _gfile().exists(path):
    _gfile().remove(path)


def remove_temporaries(folder: str) -> None:
  """Removes the temporary files (`TEMPORARY`) that writers killed mid-write left in `folder`."""
  if not exists(folder):
    return
  names = _gfile().listdir(folder) if is_remote(folder) else os.listdir(folder)
  for name in names:
    if fnmatch.fnmatchcase(name, TEMPORARY):
      remove(join(folder, name))


def inside(root: str, *parts: str) -> str:
  """`root` joined with `parts`, refused (`UserError`) unless it stays strictly inside `root`
  (see `files.inside`; remote paths are checked the same way on their normalised form)."""
  if not is_remote(root):
    return str(local_inside(root, *parts))
  base = posixpath.normpath(str(root).split("://", 1)[1])
  path = posixpath.normpath(posixpath.join(base, *parts))
  if posixpath.commonpath([base, path]) != base or path == base:
    raise UserError(f"{posixpath.join(str(root), *parts)} lies outside {root}; refusing to "
                    f"write or delete there (a name in an annotation file or from a server is "
                    f"unsafe)")
  return f"{str(root).split('://', 1)[0]}://{path}"


@contextlib.contextmanager
def locked(folder: str, busy: str) -> Iterator[None]:
  """Refuses a second writer on the same local `folder` with the `UserError` `busy` (remote
  folders are not locked: the user runs one launcher per output folder). The lock file is
  removed when the writer is done."""
  if is_remote(folder):
    yield
    return
  lock = filelock.FileLock(join(folder, ".lock"), timeout=0)
  try:
    lock.acquire()
  except filelock.Timeout:
    raise UserError(busy) from None
  except OSError as e:
    raise UserError(f"cannot write to {folder} ({e.strerror or e}); choose a writable "
                    f"folder") from None
  try:
    yield
  finally:
    Path(lock.lock_file).unlink(missing_ok=True)
    lock.release()


def list_names(folder: str, suffix: str = "") -> list[str]:
  """Names of the files directly in `folder` ending with `suffix` (none if it does not exist),
  without temporary files (names starting with a dot)."""
  if not exists(folder):
    return []
  names = _gfile().listdir(folder) if is_remote(folder) else os.listdir(folder)
  return sorted(n.rstrip("/") for n in names if n.endswith(suffix) and not n.startswith("."))


def walk_files(root: str) -> Iterator[str]:
  """Every file below `root`, as paths joined onto `root`."""
  for folder, _, names in (_gfile().walk if is_remote(root) else os.walk)(root):
    yield from (posixpath.join(folder, n) for n in names)


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[Path]:
  """A local path holding the content of `path` (itself when it is local)."""
  if not is_remote(path):
    yield Path(path)
    return
  with tempfile.TemporaryDirectory(prefix="i3d-") as folder:
    local = Path(folder) / posixpath.basename(path)
    _gfile().copy(path, str(local))
    yield local


@contextlib.contextmanager
def local_folder(folder: str) -> Iterator[Path]:
  """A local folder whose files end up in `folder`: itself when it is local, else a temporary
  one copied over file by file (each atomically) when the block ends without an error."""
  if not is_remote(folder):
    os.makedirs(folder, exist_ok=True)
    yield Path(folder)
    return
  staging = Path(tempfile.mkdtemp(prefix="i3d-"))
  try:
    yield staging
    for path in sorted(staging.rglob("*")):
      if path.is_file():
        write_bytes(join(folder, *path.relative_to(staging).parts), path.read_bytes())
  finally:
    shutil.rmtree(staging, ignore_errors=True)

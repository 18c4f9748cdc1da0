"""Files that are never half written: a reader sees the old content or the new, nothing between."""

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

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


def remove_empty(folders: list[Path]) -> None:
  """Removes those of `folders` (deepest first) that are empty: what a failed attempt made."""
  for folder in folders:
    try:
      folder.rmdir()
    except FileNotFoundError:  # never made after all
      continue
    except OSError:  # not empty (a resumable .part file), or not ours to remove
      return

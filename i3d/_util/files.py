"""Files that are never half written: a reader sees the old content or the new, nothing between."""

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
  """Opens a temporary file beside `path`; on success it is fsynced and renamed onto `path`.

  On an exception the temporary file is removed and `path` is left as it was.
  """
  path = Path(path)
  temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
  encoding = None if "b" in mode else "utf-8"
  try:
    with open(temporary, mode, encoding=encoding) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  finally:
    temporary.unlink(missing_ok=True)


def write_json(path: str | Path, data: object) -> None:
  """Writes `data` as indented JSON, atomically."""
  with atomic_write(path) as f:
    json.dump(data, f, indent=1)

"""Append-only JSON-lines logs that survive kill -9 (evaluation results, download reports)."""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Self

from i3d._util import storage
from i3d._util.files import atomic_write, open_no_follow
from i3d.errors import UserError


def parse(data: bytes, name: str | os.PathLike) -> list[dict]:
  """The records of the complete lines `data` of the JSON-lines file `name` (a damaged line is a
  `UserError`)."""
  try:
    records = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise UserError(f"{name} is damaged ({e}); remove it to start again") from None
  if not all(isinstance(r, dict) for r in records):
    raise UserError(f"{name} is damaged (a line is not a JSON object); remove it to start again")
  return records


class Closing:
  """Closes itself (`close`) when its `with` block ends."""

  def close(self) -> None:
    raise NotImplementedError

  def __enter__(self) -> Self:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


class JsonLines(Closing):
  """A JSON-lines file whose records are each one fsynced line.

  A torn last line (no newline: the process died mid-write) is cut off when the file is opened,
  so the next append starts on a fresh line; any other damaged line is a `UserError`.
  """

  def __init__(self, path: str | Path):
    self.path = Path(path)
    self.records: list[dict] = self._recover()
    self._file: IO[str] | None = None

  def _recover(self) -> list[dict]:
    """The complete records; a torn last line is cut off. The file is opened without following
    links (`files.open_no_follow`): a link is refused before anything is read or cut."""
    try:
      fd = open_no_follow(self.path, os.O_RDONLY)
    except FileNotFoundError:
      return []
    with os.fdopen(fd, "rb") as f:
      data = f.read()
    complete = data[:data.rfind(b"\n") + 1]
    records = parse(complete, self.path)
    if len(complete) < len(data):
      with os.fdopen(open_no_follow(self.path, os.O_WRONLY), "wb") as f:
        f.truncate(len(complete))
        os.fsync(f.fileno())
    return records

  def append(self, record: dict) -> None:
    """Writes one record durably before returning."""
    if self._file is None:
      self.path.parent.mkdir(parents=True, exist_ok=True)
      fd = open_no_follow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
      self._file = os.fdopen(fd, "a", encoding="utf-8")
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()
    os.fsync(self._file.fileno())
    self.records.append(record)

  def keep(self, wanted: Callable[[dict], bool]) -> None:
    """Rewrites the file, atomically, with only the records for which `wanted` is true."""
    self.close()
    self.records = [r for r in self.records if wanted(r)]
    if self.path.is_symlink():
      raise UserError(f"{self.path} is a symbolic link; refusing to replace it (remove the link)")
    with atomic_write(self.path) as f:
      f.writelines(json.dumps(r) + "\n" for r in self.records)

  def sync(self) -> None:
    """Nothing to do: each record is durable once `append` returns."""

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None


class RemoteLines(Closing):
  """A JSON-lines file on a filesystem `storage` reaches remotely (gs://...), which cannot be
  appended to: the records are kept here and `sync` rewrites the whole file atomically, so a
  reader sees the records of the last `sync` (call it before anything depends on them)."""

  def __init__(self, path: str):
    self.path = path
    self.records: list[dict] = (parse(storage.read_bytes(path), path) if storage.exists(path)
                                else [])
    self._synced = len(self.records)

  def append(self, record: dict) -> None:
    """Adds one record (durable after the next `sync`)."""
    self.records.append(record)

  def sync(self) -> None:
    """Writes the file if records were added since the last `sync`."""
    if self._synced != len(self.records):
      storage.write_bytes(self.path, "".join(json.dumps(r) + "\n" for r in self.records).encode())
      self._synced = len(self.records)

  def keep(self, wanted: Callable[[dict], bool]) -> None:
    """Rewrites the file, atomically, with only the records for which `wanted` is true."""
    self.records = [r for r in self.records if wanted(r)]
    self._synced = -1
    self.sync()

  def close(self) -> None:
    self.sync()


def open_lines(path: str) -> JsonLines | RemoteLines:
  """The JSON-lines file `path`: appended line by line when local, else a `RemoteLines`."""
  return RemoteLines(path) if storage.is_remote(path) else JsonLines(path)


def read(path: str | Path) -> list[dict]:
  """The records of the JSON-lines file `path`, local or remote (none if it does not exist)."""
  return open_lines(str(path)).records

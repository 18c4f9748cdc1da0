"""Append-only JSON-lines logs that survive kill -9 (evaluation results, download reports)."""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from i3d._util.files import atomic_write
from i3d.errors import UserError


class JsonLines:
  """A JSON-lines file whose records are each one fsynced line.

  A torn last line (no newline: the process died mid-write) is cut off when the file is opened,
  so the next append starts on a fresh line; any other damaged line is a `UserError`.
  """

  def __init__(self, path: str | Path):
    self.path = Path(path)
    self.records: list[dict] = self._recover()
    self._file: IO[str] | None = None

  def _recover(self) -> list[dict]:
    if not self.path.exists():
      return []
    data = self.path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if len(complete) < len(data):
      with open(self.path, "r+b") as f:
        f.truncate(len(complete))
        os.fsync(f.fileno())
    try:
      records = [json.loads(line) for line in complete.decode().splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      raise UserError(f"{self.path} is damaged ({e}); remove it to start again") from None
    if not all(isinstance(r, dict) for r in records):
      raise UserError(f"{self.path} is damaged (a line is not a JSON object); remove it to "
                      f"start again")
    return records

  def append(self, record: dict) -> None:
    """Writes one record durably before returning."""
    if self._file is None:
      self.path.parent.mkdir(parents=True, exist_ok=True)
      self._file = open(self.path, "a", encoding="utf-8")
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()
    os.fsync(self._file.fileno())
    self.records.append(record)

  def keep(self, wanted: Callable[[dict], bool]) -> None:
    """Rewrites the file, atomically, with only the records for which `wanted` is true."""
    self.close()
    self.records = [r for r in self.records if wanted(r)]
    with atomic_write(self.path) as f:
      f.writelines(json.dumps(r) + "\n" for r in self.records)

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None

  def __enter__(self) -> "JsonLines":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

"""What runs that died leave in a run folder (`i3d.runs.folder`), for the poison-item tests."""

from pathlib import Path

from i3d._util.jsonl import JsonLines
from i3d.runs import folder as runs


def died_on(started: Path, item_id: str, path: Path, times: int = runs.MAX_STARTS) -> None:
  """Appends to the started log `started` what `times` runs that died on the item `item_id` (its
  file `path`, unchanged since) leave: its start, with no outcome."""
  with JsonLines(started) as log:
    for _ in range(times):
      log.append({"id": item_id, "file": runs.file_state(path)})

"""A training run's checkpoints, each one complete or absent whatever moment a kill comes.

- `checkpoints/step-NNNNNNNN/`: model, optimizer state and step (`ckpt.*`, a
  `tf.train.Checkpoint`) with the run's state at that step (`state.json`: losses, top-1s, the
  best so far, seconds), so the two always agree; the last `keep` are kept;
- `best/`: the same for the step with the best evaluation top-1.

Each is written into `.NAME.tmp` beside its place, flushed to disk, and then put in its place
whole (`files.replace_folder`). A run resumes from the last complete one; `clean` removes what a
killed save left.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import tensorflow as tf

from i3d._util import files

CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
STATE_FILE = "state.json"
PREFIX = "ckpt"
_STEP = re.compile(r"^step-(\d{1,12})$")


def write(checkpoint: tf.train.Checkpoint, state: dict, target: Path) -> None:
  """`checkpoint` and `state` as the folder `target`, replacing any folder there whole."""
  staging = files.staging_folder(target)
  checkpoint.write(str(staging / PREFIX))
  files.write_json(staging / STATE_FILE, state)
  files.replace_folder(staging, target)


def save(checkpoint: tf.train.Checkpoint, state: dict, folder: Path, keep: int) -> None:
  """`checkpoint` and `state` as `folder/checkpoints/step-N` (N: `state["step"]`); the older
  ones beyond the last `keep` are removed."""
  write(checkpoint, state, folder / CHECKPOINTS_DIR / f"step-{state['step']:08d}")
  for old in saved(folder)[:-keep]:
    shutil.rmtree(old)


def saved(folder: Path) -> list[Path]:
  """The checkpoints in `folder/checkpoints`, oldest first."""
  root = folder / CHECKPOINTS_DIR
  found = [(int(m.group(1)), p) for p in (root.iterdir() if root.is_dir() else ())
           if (m := _STEP.match(p.name)) and p.is_dir()]
  return [p for _, p in sorted(found)]


def restore(checkpoint: tf.train.Checkpoint, saved_folder: Path) -> dict:
  """Loads the checkpoint of `saved_folder` into `checkpoint`; returns its state."""
  checkpoint.read(str(saved_folder / PREFIX)).expect_partial()
  return read_state(saved_folder)


def read_state(folder: Path) -> dict:
  """`folder/state.json` ({} when absent or unreadable)."""
  try:
    found = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
  except (OSError, ValueError):
    return {}
  return found if isinstance(found, dict) else {}


def clean(folder: Path) -> None:
  """Removes the staging folders (`.NAME.tmp`, `.NAME.old`) that killed saves left in the run
  `folder` and its `checkpoints/`."""
  for parent in (folder, folder / CHECKPOINTS_DIR):
    for leftover in (*parent.glob(".*.tmp"), *parent.glob(".*.old")):
      if leftover.is_dir() and not leftover.is_symlink():
        shutil.rmtree(leftover)

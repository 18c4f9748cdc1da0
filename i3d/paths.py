"""Where the toolkit finds its bundled data and keeps downloaded checkpoints."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Label maps and the sample clip; `$I3D_DATA_DIR` points elsewhere (a copy of data/).
DATA_DIR = Path(os.environ.get("I3D_DATA_DIR", REPO_ROOT / "data"))


def default_checkpoint_dir() -> Path:
  """`$I3D_CHECKPOINT_DIR` if set, else the repository's `checkpoints/` folder."""
  return Path(os.environ.get("I3D_CHECKPOINT_DIR", REPO_ROOT / "checkpoints"))

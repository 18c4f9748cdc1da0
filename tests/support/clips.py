"""Random model inputs and the real released checkpoint index files."""

from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
INDEX_DIR = FIXTURES / "checkpoint_index"
REPO = FIXTURES.parent.parent


def real_index_prefix(name: str) -> Path:
  """Prefix of the real released index file of checkpoint `name`."""
  return INDEX_DIR / name / "model.ckpt"


def random_clip(frames: int, channels: int, seed: int = 0, batch: int = 1,
                size: int = 224) -> np.ndarray:
  """A (batch, frames, size, size, channels) float32 clip in [-1, 1]."""
  rng = np.random.default_rng(seed)
  return rng.uniform(-1, 1, (batch, frames, size, size, channels)).astype(np.float32)

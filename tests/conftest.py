"""Shared fixtures: format-exact checkpoints of all five releases, written once per session."""

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from i3d.checkpoints import CHECKPOINTS  # noqa: E402
from i3d.testing import write_format_exact_checkpoint  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
INDEX_DIR = FIXTURES / "checkpoint_index"


def real_index_prefix(name: str) -> Path:
  """Prefix of the real released index file of checkpoint `name`."""
  return INDEX_DIR / name / "model.ckpt"


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory) -> Path:
  """A checkpoint folder laid out as `checkpoints/NAME/model.ckpt.*` for all five releases."""
  root = tmp_path_factory.mktemp("checkpoints")
  for seed, name in enumerate(CHECKPOINTS):
    write_format_exact_checkpoint(real_index_prefix(name), root / name, seed=seed)
  return root


@pytest.fixture(scope="session")
def joint_classifier(checkpoint_dir):
  """The joint (RGB + flow, ImageNet-pretrained) classifier on format-exact checkpoints."""
  import i3d
  return i3d.load_classifier("joint", checkpoint_dir=checkpoint_dir, download=False)


def random_clip(frames: int, channels: int, seed: int = 0, batch: int = 1,
                size: int = 224) -> np.ndarray:
  """A (batch, frames, size, size, channels) float32 clip in [-1, 1]."""
  rng = np.random.default_rng(seed)
  return rng.uniform(-1, 1, (batch, frames, size, size, channels)).astype(np.float32)

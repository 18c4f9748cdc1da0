"""Session fixtures: format-exact checkpoints of all five releases, written once, and the
classifiers built on them. Helpers live in `tests.support`."""

from pathlib import Path

import pytest

import i3d  # sets TensorFlow's log level and oneDNN before TensorFlow loads
from i3d.model.registry import CHECKPOINTS
from tests.support.clips import real_index_prefix


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory) -> Path:
  """A checkpoint folder laid out as `checkpoints/NAME/model.ckpt.*` for all five releases."""
  from i3d.testing import write_format_exact_checkpoint
  root = tmp_path_factory.mktemp("checkpoints")
  for seed, name in enumerate(CHECKPOINTS):
    write_format_exact_checkpoint(real_index_prefix(name), root / name, seed=seed)
  return root


@pytest.fixture(scope="session")
def joint_classifier(checkpoint_dir):
  """The joint (RGB + flow, ImageNet-pretrained) classifier on format-exact checkpoints."""
  return i3d.load_classifier("joint", checkpoint_dir=checkpoint_dir, download=False)

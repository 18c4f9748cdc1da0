"""Loading the five released checkpoints (format-exact stand-ins) strictly, with their quirks."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import i3d
from i3d._util import env
from i3d.model.checkpoints import fetch_checkpoint
from i3d.model.registry import CHECKPOINTS, DATA_FILE, INDEX_FILE
from tests.support.clips import random_clip


def _loaded(name, checkpoint_dir, **kwargs):
  info = CHECKPOINTS[name]
  model = i3d.InceptionI3d(info.num_classes, **kwargs)
  i3d.load_checkpoint(model, name, checkpoint_dir=checkpoint_dir, download=False)
  return model


def _save(prefix, tensors):
  names = sorted(tensors)
  tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=[tensors[n] for n in names])


def _tensors(prefix):
  reader = tf.train.load_checkpoint(str(prefix))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def test_load_by_folder_and_by_prefix(checkpoint_dir):
  by_name = _loaded("flow_scratch", checkpoint_dir)
  for path in (checkpoint_dir / "flow_scratch", checkpoint_dir / "flow_scratch" / "model.ckpt"):
    model = i3d.InceptionI3d(400)
    assert i3d.load_checkpoint(model, path) == checkpoint_dir / "flow_scratch" / "model.ckpt"
    for a, b in zip(model.variables, by_name.variables):
      np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_feature_extractor_loads_full_checkpoint(checkpoint_dir):
  full = _loaded("rgb_imagenet", checkpoint_dir)
  features = _loaded("rgb_imagenet", checkpoint_dir, final_endpoint="Mixed_5c")
  clip = random_clip(9, 3, size=193)
  out, _ = features(clip, is_training=False)
  _, end_points = full(clip, is_training=False)
  assert out.shape == (1, 2, 7, 7, 1024)
  np.testing.assert_array_equal(out.numpy(), end_points["Mixed_5c"].numpy())


def test_wrong_stream_is_named(checkpoint_dir):
  model = i3d.InceptionI3d(400)
  model(random_clip(9, 3, size=193), is_training=False)
  with pytest.raises(i3d.CheckpointError, match="optical-flow checkpoint"):
    i3d.load_checkpoint(model, "flow_imagenet", checkpoint_dir=checkpoint_dir, download=False)


def test_wrong_class_count_is_named(checkpoint_dir):
  with pytest.raises(i3d.CheckpointError, match="it has 600 classes, the model 400"):
    i3d.load_checkpoint(i3d.InceptionI3d(400), "rgb_scratch_kin600",
                        checkpoint_dir=checkpoint_dir, download=False)


def test_missing_and_unexpected_variables_are_listed(checkpoint_dir, tmp_path):
  tensors = _tensors(checkpoint_dir / "rgb_imagenet" / "model.ckpt")
  del tensors["RGB/inception_i3d/Mixed_4d/Branch_1/Conv3d_0b_3x3/conv_3d/w"]
  tensors["RGB/inception_i3d/Mixed_4d/Branch_9/Conv3d_0a_1x1/conv_3d/w"] = np.zeros(3)
  _save(tmp_path / "model.ckpt", tensors)
  with pytest.raises(i3d.CheckpointError) as error:
    i3d.load_checkpoint(i3d.InceptionI3d(400), tmp_path)
  message = str(error.value)
  assert "1 model variables missing from the checkpoint: Mixed_4d/Branch_1/Conv3d_0b_3x3" in message
  assert "1 checkpoint variables not in the model: Mixed_4d/Branch_9/Conv3d_0a_1x1" in message


def test_shape_mismatch_is_listed(checkpoint_dir, tmp_path):
  tensors = _tensors(checkpoint_dir / "rgb_imagenet" / "model.ckpt")
  tensors["RGB/inception_i3d/Mixed_3c/Branch_0/Conv3d_0a_1x1/batch_norm/beta"] = np.zeros(7)
  _save(tmp_path / "model.ckpt", tensors)
  with pytest.raises(i3d.CheckpointError,
                     match=r"Mixed_3c/Branch_0/Conv3d_0a_1x1/batch_norm/beta: model \[128\], "
                           r"checkpoint \[7\]"):
    i3d.load_checkpoint(i3d.InceptionI3d(400), tmp_path)


def test_truncated_data_shard_is_a_clear_error(checkpoint_dir, tmp_path):
  folder = tmp_path / "rgb_imagenet"
  shutil.copytree(checkpoint_dir / "rgb_imagenet", folder)
  data = folder / DATA_FILE
  data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
  with pytest.raises(i3d.CheckpointError, match="truncated or corrupt: delete"):
    i3d.load_checkpoint(i3d.InceptionI3d(400), "rgb_imagenet", checkpoint_dir=tmp_path,
                        download=False)


def test_damaged_index_is_a_clear_error(tmp_path):
  (tmp_path / INDEX_FILE).write_bytes(b"not an index")
  with pytest.raises(i3d.CheckpointError, match="cannot read checkpoint"):
    i3d.load_checkpoint(i3d.InceptionI3d(400), tmp_path / "model.ckpt")


def test_missing_checkpoint_offline_says_how_to_place_it(tmp_path):
  with pytest.raises(i3d.CheckpointError) as error:
    i3d.load_checkpoint(i3d.InceptionI3d(400), "rgb_imagenet", checkpoint_dir=tmp_path,
                        download=False)
  message = str(error.value)
  assert "by hand" in message and str(tmp_path / "rgb_imagenet") in message
  assert CHECKPOINTS["rgb_imagenet"].url(DATA_FILE) in message


def test_unknown_name_or_path(tmp_path):
  with pytest.raises(i3d.CheckpointError, match="rgb_imagenet, flow_imagenet"):
    i3d.load_checkpoint(i3d.InceptionI3d(400), str(tmp_path / "nowhere"))


def test_rgb600_classifier_uses_600_labels(checkpoint_dir):
  classifier = i3d.load_classifier("rgb600", checkpoint_dir=checkpoint_dir, download=False)
  assert classifier.streams == ("rgb",)
  assert len(classifier.labels) == 600 == classifier(rgb=random_clip(9, 3)).shape[1]
  with pytest.raises(i3d.UserError, match="unknown eval type 'rgb700'"):
    i3d.load_classifier("rgb700", checkpoint_dir=checkpoint_dir)


def test_every_missing_checkpoint_is_named_at_once(checkpoint_dir, tmp_path):
  shutil.copytree(checkpoint_dir / "rgb_scratch", tmp_path / "rgb_scratch")
  with pytest.raises(i3d.CheckpointError) as error:
    i3d.load_classifier("joint", checkpoint_dir=tmp_path, download=False)
  message = str(error.value)
  assert message.startswith("2 checkpoints missing (rgb_imagenet, flow_imagenet):")
  for name in ("rgb_imagenet", "flow_imagenet"):
    assert f"into {tmp_path / name}/:" in message
    assert CHECKPOINTS[name].url(DATA_FILE) in message
  assert "rgb_scratch" not in message  # present, so not named


def test_default_folder_is_the_per_user_cache(monkeypatch, tmp_path):
  monkeypatch.delenv("I3D_CHECKPOINT_DIR", raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert env.checkpoint_dir() == tmp_path / "xdg" / "i3d" / "checkpoints"
  monkeypatch.delenv("XDG_CACHE_HOME")
  assert env.checkpoint_dir() == Path.home() / ".cache" / "i3d" / "checkpoints"
  monkeypatch.setenv("I3D_CHECKPOINT_DIR", str(tmp_path / "mine"))
  assert env.checkpoint_dir() == tmp_path / "mine"


def test_a_failed_download_leaves_no_empty_folder(monkeypatch, tmp_path):
  monkeypatch.delenv("I3D_CHECKPOINT_DIR", raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  with pytest.raises(i3d.DownloadError):  # nothing listens on port 9
    fetch_checkpoint("rgb_imagenet", base_url="http://127.0.0.1:9", retries=0)
  assert list(tmp_path.iterdir()) == []
  with pytest.raises(i3d.DownloadError, match="downloads are off"):
    fetch_checkpoint("rgb_imagenet", download=False)
  assert list(tmp_path.iterdir()) == []
  with pytest.raises(i3d.DownloadError, match="downloads are off"):  # converted, not downloaded
    fetch_checkpoint("rgb_tfhub", download=False)
  assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_path_brings_its_own_labels(checkpoint_dir, tmp_path):
  import shutil

  import i3d
  from i3d.errors import CheckpointError, UserError
  mine = tmp_path / "mine"
  shutil.copytree(checkpoint_dir / "rgb_scratch", mine)
  names = [f"class {i}" for i in range(400)]
  (mine / "labels.txt").write_text("\n".join(names) + "\n")
  classifier = i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False,
                                   rgb_checkpoint=mine, optimize=False)
  assert classifier.checkpoints == {"rgb": str(mine)} and list(classifier.labels) == names
  with pytest.raises(UserError, match="classify different classes; their logits cannot be "
                                      "summed"):
    i3d.load_classifier("joint", checkpoint_dir=checkpoint_dir, rgb_checkpoint=mine)
  (mine / "labels.txt").write_text("\n".join(names[:399]) + "\n")
  with pytest.raises(CheckpointError, match="names 399 classes but .* has 400"):
    i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, rgb_checkpoint=mine)
  (mine / "labels.txt").unlink()
  with pytest.raises(CheckpointError, match="is a rgb model, not flow; pass it as "
                                            "--rgb_checkpoint"):
    i3d.load_classifier("flow", checkpoint_dir=checkpoint_dir, flow_checkpoint=mine)

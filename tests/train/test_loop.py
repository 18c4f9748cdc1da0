"""The training loop on generated clips: it learns, resumes exactly, and refuses changed
settings. Small shapes (32x32 crops, 9 frames, batch 4) from random weights (`--init scratch`;
BatchNorm trained, which a network from scratch needs)."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from i3d.errors import UserError
from i3d.train import loop
from tests.train.support import write_set


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
  root = tmp_path_factory.mktemp("motion")
  return write_set(root / "train", 4, frames=12), write_set(root / "eval", 1, frames=12, seed=1)


def _config(sets, output, **changes) -> loop.TrainConfig:
  train, evaluation = sets
  settings = dict(records=str(train), eval_records=str(evaluation), output_dir=str(output),
                  init="scratch", clip_frames=9, crop_size=32, batch=4, steps=30,
                  learning_rate=0.01, batchnorm="trained", dropout_keep_prob=1.0,
                  checkpoint_every=30, eval_every=30)
  return loop.TrainConfig(**{**settings, **changes})


def _weights(folder):
  reader = tf.train.load_checkpoint(str(folder / "rgb" / "model.ckpt"))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


@pytest.fixture(scope="module")
def learned(sets, tmp_path_factory):
  """A run of 30 steps: (its folder, its config, its final state)."""
  folder = tmp_path_factory.mktemp("learned") / "run"
  config = _config(sets, folder)
  return folder, config, loop.train(config)


def test_learns_up_from_down_and_writes_a_released_layout_model(learned):
  folder, _, state = learned
  assert state["step"] == 30 and state["train_top1"] == 1.0 and state["loss"] < 0.1, state
  weights = _weights(folder)
  assert weights["RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/w"].shape == (1, 1, 1, 1024, 2)
  assert (folder / "rgb" / "labels.txt").read_text() == "up\ndown\n"
  summary = (folder / "summary.md").read_text()
  assert "steps: 30 of 30" in summary and "evaluation top-1" in summary
  assert list((folder / "tensorboard").iterdir())


def test_a_stopped_run_resumes_to_the_same_weights(sets, tmp_path, monkeypatch):
  config = _config(sets, tmp_path / "straight", steps=4, checkpoint_every=2, eval_every=4,
                   dropout_keep_prob=0.5, batch=2)
  loop.train(config)
  stopped = dataclasses.replace(config, output_dir=str(tmp_path / "stopped"))
  real = loop.learning_rate

  def stop_at_step_3(config, step, total):
    if step == 3:
      raise KeyboardInterrupt  # as a kill after the checkpoint of step 2
    return real(config, step, total)

  monkeypatch.setattr(loop, "learning_rate", stop_at_step_3)
  with pytest.raises(KeyboardInterrupt):
    loop.train(stopped)
  monkeypatch.setattr(loop, "learning_rate", real)
  assert loop.train(stopped)["step"] == 4
  straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "stopped")
  assert straight.keys() == resumed.keys()
  for name in straight:
    np.testing.assert_allclose(resumed[name], straight[name], rtol=1e-4, atol=1e-5, err_msg=name)
  moved = _weights(tmp_path / "straight")["RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/b"]
  assert np.abs(moved).max() > 0  # the run did train


def test_a_rerun_with_other_settings_is_refused_with_the_differences(learned):
  _, config, _ = learned
  with pytest.raises(UserError, match=r"learning_rate: 0\.01 -> 0\.02"):
    loop.train(dataclasses.replace(config, learning_rate=0.02))


def test_bad_settings_are_one_line(sets, tmp_path):
  with pytest.raises(UserError, match="--batch 3 does not split evenly|fewer than one batch"):
    loop.train(_config(sets, tmp_path / "run", batch=30))
  with pytest.raises(UserError, match="give --steps"):
    loop.train(_config(sets, tmp_path / "run", steps=None))

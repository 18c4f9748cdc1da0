"""The training loop on generated clips: it resumes exactly and refuses changed settings. Small
shapes (32x32 crops, 9 frames, batch 2) from random weights (`--init scratch`, BatchNorm
trained), layers up to Mixed_5b frozen so each of the three runs traces a short backward pass.
(A run that learns is `tests/cli/test_train.py`'s; one step's numbers are `test_step.py`'s.)"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from i3d.errors import UserError
from i3d.train import loop


def _config(sets, output, **changes) -> loop.TrainConfig:
  train, evaluation = sets
  settings = dict(records=str(train), eval_records=str(evaluation), output_dir=str(output),
                  init="scratch", clip_frames=9, crop_size=32, batch=2, steps=30,
                  learning_rate=0.01, batchnorm="trained", dropout_keep_prob=1.0,
                  checkpoint_every=30, eval_every=30)
  return loop.TrainConfig(**{**settings, **changes})


def _weights(folder):
  reader = tf.train.load_checkpoint(str(folder / "rgb" / "model.ckpt"))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def test_a_stopped_run_resumes_to_the_same_weights_and_refuses_other_settings(sets, tmp_path,
                                                                            monkeypatch):
  config = _config(sets, tmp_path / "straight", steps=4, checkpoint_every=2,
                   dropout_keep_prob=0.5, eval_records=None, freeze_until="Mixed_5b")
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
  moved = straight["RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/b"]
  assert np.abs(moved).max() > 0  # the run did train
  with pytest.raises(UserError, match=r"learning_rate: 0\.01 -> 0\.02"):
    loop.train(dataclasses.replace(stopped, learning_rate=0.02))


def test_bad_settings_are_one_line(sets, tmp_path):
  with pytest.raises(UserError, match="--batch 3 does not split evenly|fewer than one batch"):
    loop.train(_config(sets, tmp_path / "run", batch=30))
  with pytest.raises(UserError, match="give --steps"):
    loop.train(_config(sets, tmp_path / "run", steps=None))

"""The training loop on generated clips: a run killed (SIGKILL) between checkpoints or in the
middle of writing one resumes to the weights of an uninterrupted run, its folder a usable
checkpoint all along; changed settings are refused. Small shapes (32x32 crops, 9 frames, batch
2) from random weights (`--init scratch`, BatchNorm trained), layers up to Mixed_5b frozen so
each run traces a short backward pass; float32 (bfloat16's step is `test_step.py`'s). The
killed run is two child processes (stopped where the test chooses: they write a marker file and
wait to be killed) and its end in this one, all with the step run eagerly (no trace; the
uninterrupted run traces it: the same numbers to round-off).
(A run that learns is `tests/cli/test_train.py`'s; one step's numbers are `test_step.py`'s.)"""

import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from i3d.errors import UserError
from i3d.model import checkpoints
from i3d.train import loop, saving
from tests.support.clips import REPO
from tests.train.support import eagerly

# A child's run, waiting to be killed at a moment: `step:N` as step N+1 starts, `save:N` inside
# the save of checkpoint N (its `ckpt.*` files written, its state and the rename not yet).
KILLABLE = """
import json, sys, time
from pathlib import Path
import tensorflow as tf
from i3d.train import loop
tf.config.run_functions_eagerly(True)
config, moment, marker = json.loads(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
kind, number = moment.split(":")

def wait_for_the_kill():
  marker.write_text(moment)
  time.sleep(600)

learning_rate, write = loop.learning_rate, tf.train.Checkpoint.write

def stopping_rate(config, step, total):
  if kind == "step" and step == int(number):
    wait_for_the_kill()
  return learning_rate(config, step, total)

def stopping_write(self, prefix, *args, **kwargs):
  path = write(self, prefix, *args, **kwargs)
  if kind == "save" and f"step-{int(number):08d}" in prefix:
    wait_for_the_kill()
  return path

loop.learning_rate, tf.train.Checkpoint.write = stopping_rate, stopping_write
loop.train(loop.TrainConfig(**config))
raise SystemExit("the run ended before " + moment)
"""


def _config(sets, output, **changes) -> loop.TrainConfig:
  train, evaluation = sets
  settings = dict(records=str(train), eval_records=str(evaluation), output_dir=str(output),
                  init="scratch", clip_frames=9, crop_size=32, batch=2, steps=30,
                  learning_rate=0.01, batchnorm="trained", dropout_keep_prob=1.0,
                  checkpoint_every=30, eval_every=30, precision="float32")
  return loop.TrainConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def straight(sets, tmp_path_factory):
  """A run of 4 steps, uninterrupted, checkpoints at steps 2 and 4."""
  config = _config(sets, tmp_path_factory.mktemp("straight") / "run", steps=4,
                   checkpoint_every=2, dropout_keep_prob=0.5, eval_records=None,
                   freeze_until="Mixed_5b")
  loop.train(config)
  return config


def _tensors(prefix) -> dict:
  reader = tf.train.load_checkpoint(str(prefix))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
          if n != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def _assert_same(found: dict, expected: dict) -> None:
  assert found.keys() == expected.keys()
  for name in expected:
    np.testing.assert_allclose(found[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)


def _kill(config: loop.TrainConfig, moment: str) -> None:
  """Runs `config` in a child process and SIGKILLs it at `moment` (see `KILLABLE`)."""
  folder = config.output_dir
  marker, log = f"{folder}.{moment}.marker", open(f"{folder}.{moment}.log", "w+")
  child = subprocess.Popen(
      [sys.executable, "-c", KILLABLE, json.dumps(dataclasses.asdict(config)), moment, marker],
      cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"},
      stdout=log, stderr=subprocess.STDOUT)
  deadline = time.monotonic() + 300
  with log:
    while not os.path.exists(marker):
      if child.poll() is not None or time.monotonic() > deadline:
        child.kill()
        log.seek(0)
        pytest.fail(f"the child never reached {moment}:\n{log.read()[-3000:]}")
      time.sleep(0.02)
    child.kill()
    child.wait()


def _check_usable(run, step: int) -> None:
  """`run` is a checkpoint of its model at `step`, its checkpoints complete: what a kill left."""
  assert [p.name for p in saving.saved(run)][-1] == f"step-{step:08d}"
  for saved in saving.saved(run):
    assert saving.read_state(saved)["step"] == int(saved.name[5:])
    assert _tensors(saved / saving.PREFIX)  # readable, index and data
  assert saving.read_state(run)["step"] == step
  assert checkpoints.choose("rgb", checkpoint=run) == ("rgb", {"rgb": str(run / "rgb")})
  prefix, stream, classes, labels = checkpoints.checkpoint_facts(run / "rgb")
  assert (stream, classes, open(labels).read()) == ("rgb", 2, "up\ndown\n")
  released = _tensors(prefix)
  trained = _tensors(run / "checkpoints" / f"step-{step:08d}" / saving.PREFIX)
  for v in ("w", "b"):  # the logits, which every step moves
    np.testing.assert_array_equal(released[f"RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/{v}"],
                                  trained[f"towers/rgb/layers/Logits/conv/{v}/.ATTRIBUTES/"
                                          "VARIABLE_VALUE"])


def test_a_killed_run_resumes_to_the_same_weights_and_is_a_checkpoint_all_along(
    straight, tmp_path, monkeypatch):
  config = dataclasses.replace(straight, output_dir=str(tmp_path / "killed"), checkpoint_every=1)
  run = tmp_path / "killed"
  _kill(config, "save:2")
  staged = run / "checkpoints" / ".step-00000002.tmp"
  assert (staged / "ckpt.index").is_file()  # killed inside the save, its files half there
  _check_usable(run, 1)
  _kill(config, "step:3")  # resumed at step 1, killed as step 4 starts
  assert not staged.exists()
  _check_usable(run, 3)
  export = loop.model.export

  def stop_at_the_last(towers, labels, folder):
    if saving.saved(run)[-1].name == "step-00000004":
      raise KeyboardInterrupt  # as a kill after the last checkpoint, before its model is out
    export(towers, labels, folder)

  monkeypatch.setattr(loop.model, "export", stop_at_the_last)
  with eagerly(), pytest.raises(KeyboardInterrupt):
    loop.train(config)
  monkeypatch.setattr(loop.model, "export", export)
  assert saving.read_state(run)["step"] == 3
  with eagerly():
    assert loop.train(config)["step"] == 4  # no step left: the model of step 4 written
  _check_usable(run, 4)
  reference = straight.output_dir
  for step in (2, 4):  # model, optimizer state and step
    name = f"checkpoints/step-{step:08d}/{saving.PREFIX}"
    _assert_same(_tensors(run / name), _tensors(f"{reference}/{name}"))
  _assert_same(_tensors(run / "rgb" / "model.ckpt"), _tensors(f"{reference}/rgb/model.ckpt"))
  leftovers = [p for p in (*run.iterdir(), *(run / "checkpoints").iterdir())
               if p.name.startswith(".") and p.name != ".lock"]
  assert not leftovers and [p.name for p in saving.saved(run)] == [
      "step-00000002", "step-00000003", "step-00000004"]  # the last `keep`


def test_a_run_refuses_other_settings_and_ends_with_the_released_model(straight):
  final = _tensors(f"{straight.output_dir}/rgb/model.ckpt")
  assert np.abs(final["RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/b"]).max() > 0  # trained
  with pytest.raises(UserError, match=r"learning_rate: 0\.01 -> 0\.02"):
    loop.train(dataclasses.replace(straight, learning_rate=0.02))


def test_bad_settings_are_one_line(sets, tmp_path):
  with pytest.raises(UserError, match="--batch 3 does not split evenly|fewer than one batch"):
    loop.train(_config(sets, tmp_path / "run", batch=30))
  with pytest.raises(UserError, match="give --steps"):
    loop.train(_config(sets, tmp_path / "run", steps=None))

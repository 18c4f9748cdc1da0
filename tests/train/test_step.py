"""One training step (`Trainer.step_function`) from a format-exact checkpoint, on fixed 2 x 9 x
32 x 32 clips, checked against independent computations: the plain `tf.nn` reference graph's
loss and gradients, the checkpoint's values for frozen layers and statistics, NumPy's batch
moments for trained BatchNorm, and float32 for bfloat16. Run eagerly (`eagerly`): the same
Python step without tracing the network; the loop tests run it traced."""

import numpy as np
import pytest
import tensorflow as tf

from i3d.errors import UserError
from i3d.model import checkpoints
from i3d.model.streams import VALID_ENDPOINTS
from i3d.train import loop, model
from tests.support.clips import random_clip
from tests.support.reference_i3d import reference_endpoint, reference_layers
from tests.train.support import eagerly

CLIPS = random_clip(9, 3, seed=3, batch=2, size=32)
LABELS = np.array([0, 1])
RATE, DECAY = 0.5, 1e-3  # learning rate, weight decay
LOGITS_W, LOGITS_B = "Logits/Conv3d_0c_1x1/conv_3d/w", "Logits/Conv3d_0c_1x1/conv_3d/b"
CHECKED = (LOGITS_W, LOGITS_B, "Conv3d_1a_7x7/conv_3d/w", "Conv3d_1a_7x7/batch_norm/beta",
           "Mixed_4b/Branch_1/Conv3d_0b_3x3/conv_3d/w")


def _prefix(checkpoint_dir):
  return str(checkpoint_dir / "rgb_imagenet" / "model.ckpt")


def _step(sets, checkpoint_dir, folder, **changes):
  """One step of a run started from the format-exact rgb_imagenet: (the tower's variables by
  name before, after, the loss the step returned)."""
  settings = dict(records=str(sets[0]), output_dir=str(folder), init="rgb_imagenet",
                  checkpoint_dir=str(checkpoint_dir), download=False, clip_frames=9,
                  crop_size=32, batch=2, steps=1, dropout_keep_prob=1.0, learning_rate=RATE,
                  weight_decay=DECAY, precision="float32")
  trainer = loop.Trainer(loop.TrainConfig(**{**settings, **changes}))
  trainer.prepare()
  tower = trainer.towers["rgb"]

  def values():
    return {checkpoints.relative_name(tower, v): v.numpy() for v in tower.variables}

  before = values()
  with eagerly():
    loss, _ = trainer.step_function()(({"rgb": tf.constant(CLIPS)}, tf.constant(LABELS)),
                                      tf.constant(0, tf.int64))
  return before, values(), float(loss), trainer


@pytest.fixture(scope="module")
def float32_step(sets, checkpoint_dir, tmp_path_factory):
  """A float32 step, BatchNorm frozen, nothing frozen."""
  return _step(sets, checkpoint_dir, tmp_path_factory.mktemp("f32"))


def _reference_loss(prefix, weights):
  """Mean cross-entropy over CLIPS of the reference graph up to Mixed_5c with `weights`, then
  the training head written out: the mean over space, pairs of steps averaged, the 1x1x1
  convolution as a product, the mean over time."""
  net = next(x for name, x in reference_layers(prefix, CLIPS, weights) if name == "Mixed_5c")
  pooled = tf.reduce_mean(net, axis=(2, 3))
  pairs = (pooled[:, 1:] + pooled[:, :-1]) / 2
  logits = tf.reduce_mean(pairs @ weights[LOGITS_W][0, 0, 0] + weights[LOGITS_B], axis=1)
  picked = tf.gather(logits, LABELS, batch_dims=1)
  return tf.reduce_mean(tf.reduce_logsumexp(logits, axis=1) - picked)


def test_a_step_is_the_reference_graphs_loss_and_gradient_step(float32_step, checkpoint_dir):
  before, after, loss, _ = float32_step
  weights = {name: tf.constant(before[name]) for name in CHECKED}
  with tf.GradientTape() as tape:
    tape.watch(list(weights.values()))
    expected_loss = _reference_loss(_prefix(checkpoint_dir), weights)
  grads = tape.gradient(expected_loss, weights)
  assert loss == pytest.approx(float(expected_loss), rel=1e-5)
  for name in CHECKED:  # SGD's first step: w -= rate * (gradient + decay * w for kernels)
    decay = DECAY * before[name] if before[name].ndim == 5 else 0
    expected = RATE * (grads[name].numpy() + decay)
    assert np.abs(expected).max() > 0, name
    np.testing.assert_allclose(before[name] - after[name], expected,
                               atol=1e-4 * np.abs(expected).max(), err_msg=name)


def test_frozen_batchnorm_keeps_the_checkpoints_statistics(float32_step, checkpoint_dir):
  """(It normalises with them: the reference graph above does, and the losses agree.)"""
  _, after, _, _ = float32_step
  reader = tf.train.load_checkpoint(_prefix(checkpoint_dir))
  statistics = [n for n in after if "/moving_" in n]
  assert len(statistics) == 2 * 57
  for name in statistics:
    np.testing.assert_array_equal(after[name], reader.get_tensor(f"RGB/inception_i3d/{name}"))


def test_freeze_until_keeps_layers_and_trained_batchnorm_moves_its_averages(
    sets, checkpoint_dir, tmp_path):
  before, after, _, _ = _step(sets, checkpoint_dir, tmp_path, freeze_until="Mixed_4f",
                              batchnorm="trained")
  frozen = VALID_ENDPOINTS[:VALID_ENDPOINTS.index("Mixed_4f") + 1]
  reader = tf.train.load_checkpoint(_prefix(checkpoint_dir))
  for name, value in before.items():
    if not name.startswith("Logits/"):  # every other variable comes from the checkpoint
      np.testing.assert_array_equal(value, reader.get_tensor(f"RGB/inception_i3d/{name}"))
    if name.split("/")[0] in frozen:
      np.testing.assert_array_equal(after[name], value, err_msg=name)
    else:
      assert np.any(after[name] != value), f"{name} did not move"
  # The first trained unit's averages move a thousandth towards its batch's moments, computed
  # here from the reference graph's input to it and NumPy.
  unit = "Mixed_5b/Branch_0/Conv3d_0a_1x1"
  inputs = reference_endpoint(_prefix(checkpoint_dir), CLIPS, "MaxPool3d_5a_2x2")
  convolved = np.einsum("bthwc,ck->bthwk", inputs.astype(np.float64),
                        before[f"{unit}/conv_3d/w"][0, 0, 0].astype(np.float64))
  for stat, batch in (("moving_mean", convolved.mean(axis=(0, 1, 2, 3))),
                      ("moving_variance", convolved.var(axis=(0, 1, 2, 3)))):
    old, new = before[f"{unit}/batch_norm/{stat}"], after[f"{unit}/batch_norm/{stat}"]
    np.testing.assert_allclose((new - 0.999 * old) / 0.001, batch,
                               atol=2e-3 * np.abs(batch).max(), err_msg=stat)


def test_a_bfloat16_step_computes_the_float32_step_on_float32_weights(
    float32_step, sets, checkpoint_dir, tmp_path):
  f32_before, f32_after, f32_loss, _ = float32_step
  before, after, loss, trainer = _step(sets, checkpoint_dir, tmp_path / "run",
                                       precision="bfloat16")
  assert loss == pytest.approx(f32_loss, rel=1e-2)  # measured: 2e-3
  # The updates point the same way (cosines measured: 0.995 and 0.90; bfloat16 keeps 8 bits).
  for name, cosine in ((LOGITS_W, 0.98), ("Conv3d_1a_7x7/conv_3d/w", 0.8)):
    a, b = (f32_before[name] - f32_after[name]).ravel(), (before[name] - after[name]).ravel()
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > cosine, name
  assert {v.dtype for v in trainer.optimizer.variables} | {v.dtype for v in trainer.variables} \
      == {tf.float32}
  model.export(trainer.towers, trainer.labels, tmp_path / "export")
  written = tf.train.load_checkpoint(str(tmp_path / "export" / "rgb" / "model.ckpt"))
  assert set(written.get_variable_to_dtype_map().values()) == {tf.float32}


@pytest.mark.parametrize("flags, gpus, expected", [
    (frozenset({"avx512f", "amx_bf16"}), [], "bfloat16"),
    (frozenset({"avx512f", "avx512_bf16"}), [], "bfloat16"),
    (frozenset({"avx2", "fma"}), [], "float32"),
    (None, [], "float32"),  # flags unknown
    (frozenset({"avx2"}), [(8, 0), (9, 0)], "bfloat16"),
    (frozenset({"amx_bf16"}), [(8, 0), (7, 5)], "float32"),  # every GPU must have it
])
def test_auto_precision_is_bfloat16_where_the_machine_has_it(flags, gpus, expected, monkeypatch):
  monkeypatch.setattr(model.cpu, "cpu_flags", lambda: flags)
  monkeypatch.setattr(model.tf.config, "list_physical_devices", lambda kind: list(gpus))
  monkeypatch.setattr(model.tf.config.experimental, "get_device_details",
                      lambda gpu: {"compute_capability": gpu})
  assert model.resolve_precision("auto") == expected
  assert model.resolve_precision("float32") == "float32"
  with pytest.raises(UserError, match="auto, float32, bfloat16"):
    model.resolve_precision("float16")

"""InceptionI3d: architecture, variable names against the real index files, shapes, training."""

import numpy as np
import pytest
import tensorflow as tf

import i3d
from i3d.model.checkpoints import relative_name
from tests.support.clips import random_clip


def _variable_shapes(model):
  return {relative_name(model, v): v.shape.as_list() for v in model.variables}


@pytest.fixture(scope="module")
def rgb_model():
  model = i3d.InceptionI3d(400)
  model.create_variables(3)
  return model


def test_endpoint_shapes_as_in_released_test(rgb_model):
  """`i3d_test.py`: 64 frames of 224x224 -> Mixed_5c (B, 8, 7, 7, 1024), logits (B, 400)."""
  model = i3d.InceptionI3d(400, final_endpoint="Predictions")
  spec = tf.TensorSpec([5, 64, 224, 224, 3])
  traced = tf.function(lambda x: model(x, is_training=False),
                       autograph=False).get_concrete_function(spec)
  predictions, end_points = traced.structured_outputs
  assert list(end_points) == list(i3d.VALID_ENDPOINTS)
  assert predictions.shape.as_list() == [5, 400]
  assert end_points["Mixed_5c"].shape.as_list() == [5, 8, 7, 7, 1024]
  assert end_points["Conv3d_1a_7x7"].shape.as_list() == [5, 32, 112, 112, 64]
  assert end_points["Mixed_4f"].shape.as_list() == [5, 16, 14, 14, 832]
  assert end_points["Logits"].shape.as_list() == [5, 400]


def test_no_spatial_squeeze_keeps_spatial_logits():
  model = i3d.InceptionI3d(400, spatial_squeeze=False)
  spec = tf.TensorSpec([2, 16, 256, 320, 3])
  traced = tf.function(lambda x: model(x, is_training=False),
                       autograph=False).get_concrete_function(spec)
  assert traced.structured_outputs[0].shape.as_list() == [2, 2, 4, 400]


@pytest.mark.parametrize("final_endpoint", ["Conv3d_1a_7x7", "Mixed_4c", "Mixed_5c"])
def test_final_endpoint_stops_there(final_endpoint):
  model = i3d.InceptionI3d(final_endpoint=final_endpoint)
  net, end_points = model(random_clip(4, 3, size=64), is_training=False)
  assert list(end_points)[-1] == final_endpoint
  assert net is end_points[final_endpoint]
  assert "Logits" not in model.units


def test_unit_equals_plain_tf_ops():
  """The stem recomputed by hand: conv (TF SAME, stride 2), BatchNorm on moving stats, ReLU."""
  model = i3d.InceptionI3d(final_endpoint="Conv3d_1a_7x7")
  clip = random_clip(5, 3, size=33)
  model(clip, is_training=False)
  unit = model.units["Conv3d_1a_7x7"]
  unit.bn.moving_mean.assign(tf.random.normal([64]))
  unit.bn.moving_variance.assign(tf.random.uniform([64], 0.5, 2.0))
  unit.bn.beta.assign(tf.random.normal([64]))
  out, _ = model(clip, is_training=False)
  expected = tf.nn.conv3d(clip, unit.conv.w, [1, 2, 2, 2, 1], "SAME")
  expected = tf.nn.relu((expected - unit.bn.moving_mean) /
                        np.sqrt(unit.bn.moving_variance.numpy() + 1e-3) + unit.bn.beta)
  assert out.shape == (1, 3, 17, 17, 64)
  np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,message", [
    ((1, 16, 224, 224), "rank 4"),
    ((1, 8, 224, 224, 3), "at least 9 frames"),
    ((1, 16, 160, 224, 3), "height of at least 193"),
    ((1, 16, 224, 256, 3), "spatial_squeeze"),
    ((1, 16, 224, 224, 2), "built for 3 input channels"),
])
def test_bad_input_shapes_are_clear_value_errors(rgb_model, shape, message):
  with pytest.raises(ValueError, match=message):
    rgb_model(tf.zeros(shape), is_training=False)


def test_smallest_accepted_clip(rgb_model):
  logits, _ = rgb_model(random_clip(9, 3, size=193), is_training=False)
  assert logits.shape == (1, 400)


def test_unknown_final_endpoint():
  with pytest.raises(ValueError, match="Unknown final endpoint 'Mixed_9z'"):
    i3d.InceptionI3d(final_endpoint="Mixed_9z")


def test_training_moves_batchnorm_statistics_and_reaches_every_variable():
  model = i3d.InceptionI3d(10)
  clip = random_clip(9, 2, size=193, batch=2)
  with tf.GradientTape() as tape:
    logits, _ = model(clip, is_training=True, dropout_keep_prob=0.5)
    loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits([1, 3], logits))
  grads = tape.gradient(loss, model.trainable_variables)
  assert len(model.trainable_variables) == 57 * 2 + 2  # w and beta per unit; logits w and b
  for variable, grad in zip(model.trainable_variables, grads):
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0, variable.name
  stem = model.units["Conv3d_1a_7x7"].bn
  before = stem.moving_mean.numpy().copy()
  pre_bn = model.units["Conv3d_1a_7x7"].conv(tf.constant(clip))
  model(clip, is_training=True)
  batch_mean = tf.reduce_mean(pre_bn, axis=[0, 1, 2, 3]).numpy()
  np.testing.assert_allclose(stem.moving_mean.numpy(), 0.999 * before + 0.001 * batch_mean,
                             rtol=1e-4, atol=1e-6)
  frozen = stem.moving_mean.numpy().copy()
  model(clip, is_training=False)
  np.testing.assert_array_equal(stem.moving_mean.numpy(), frozen)


def test_dropout_only_when_keep_prob_below_one(rgb_model):
  clip = random_clip(9, 3, size=193)
  a, _ = rgb_model(clip, is_training=False, dropout_keep_prob=1.0)
  b, _ = rgb_model(clip, is_training=False, dropout_keep_prob=1.0)
  c, _ = rgb_model(clip, is_training=False, dropout_keep_prob=0.5)
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert not np.allclose(a.numpy(), c.numpy())

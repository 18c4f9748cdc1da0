"""Golden checks: the model's variables against the real released index files, and its logits
on format-exact checkpoints against an independent plain `tf.nn` graph."""

import numpy as np
import pytest
import tensorflow as tf

import i3d
from i3d.model.checkpoints import model_variable_names, relative_name
from i3d.model.registry import CHECKPOINTS, RELEASED
from tests.support.clips import random_clip, real_index_prefix
from tests.support.reference_i3d import reference_logits


def _variable_shapes(model):
  return {relative_name(model, v): v.shape.as_list() for v in model.variables}


@pytest.mark.parametrize("name", list(RELEASED))
def test_variables_match_each_real_index_both_ways(name):
  info = CHECKPOINTS[name]
  model = i3d.InceptionI3d(info.num_classes)
  model.create_variables(info.channels)
  ours = _variable_shapes(model)
  shapes = tf.train.load_checkpoint(str(real_index_prefix(name))).get_variable_to_shape_map()
  theirs = {k: shapes[v] for k, v in model_variable_names(shapes).items()}
  assert set(ours) == set(theirs)
  assert len(ours) == 230
  for var, shape in ours.items():
    if name == "rgb_scratch_kin600" and "/batch_norm/" in var:
      assert theirs[var] == [1, 1, 1, 1] + shape  # the Kinetics-600 checkpoint's quirk
    else:
      assert theirs[var] == shape, var
  # The released quirk: Mixed_5b's Branch_2 3x3 is called Conv3d_0a_3x3.
  assert "Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w" in ours
  assert "Mixed_5c/Branch_2/Conv3d_0b_3x3/conv_3d/w" in ours
  # Scope detection finds the released scope without being told.
  assert all(v.startswith(info.scope) for v in model_variable_names(shapes).values())


@pytest.mark.parametrize("name", list(RELEASED))
def test_each_release_loads_and_matches_independent_graph(name, checkpoint_dir):
  info = CHECKPOINTS[name]
  state = (checkpoint_dir / name / "checkpoint").read_text()  # the released state file
  assert state == (real_index_prefix(name).parent / "checkpoint").read_text()
  model = i3d.InceptionI3d(info.num_classes)
  i3d.load_checkpoint(model, name, checkpoint_dir=checkpoint_dir, download=False)
  clip = random_clip(9, info.channels, seed=len(name))
  ours = model(clip, is_training=False)[0].numpy()
  expected = reference_logits(str(checkpoint_dir / name / "model.ckpt"), clip)
  assert ours.shape == (1, info.num_classes)
  np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
  assert np.abs(expected).max() > 1.0  # weights actually arrived (random init gives ~0)


def test_classifier_sums_streams(joint_classifier, checkpoint_dir):
  rgb, flow = random_clip(9, 3, seed=1), random_clip(9, 2, seed=2)
  fused = joint_classifier(rgb=rgb, flow=flow).numpy()
  expected = (reference_logits(str(checkpoint_dir / "rgb_imagenet" / "model.ckpt"), rgb) +
              reference_logits(str(checkpoint_dir / "flow_imagenet" / "model.ckpt"), flow))
  np.testing.assert_allclose(fused, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
  assert joint_classifier.streams == ("rgb", "flow")
  assert joint_classifier.labels[0] == "abseiling" and len(joint_classifier.labels) == 400
  with pytest.raises(i3d.UserError, match="missing \\['flow'\\]"):
    joint_classifier(rgb=rgb)

"""The fast inference graph (`i3d.model.fast`, used by `load_classifier`) gives the plain
model's logits."""

import numpy as np
import pytest
import tensorflow as tf

import i3d
from i3d._util import cpu
from i3d.model import hardware
from i3d.model.fast import (
  WINOGRAD_MIN_CHANNELS,
  FastI3d,
  FastInceptionBlock,
  FusedConv,
  PairedColumnsConv,
  TemporalWinogradConv,
  fold_batch_norm,
)
from i3d.model.network import INCEPTION_CHANNELS
from tests.support.clips import random_clip
from tests.support.reference_i3d import reference_logits

TOLERANCE = 1e-4  # relative to the largest logit


def relative_error(actual, expected) -> float:
  """Largest absolute difference over the largest expected magnitude."""
  return float(np.max(np.abs(np.asarray(actual) - expected)) / np.max(np.abs(expected)))


@pytest.fixture(scope="session")
def rgb600_classifier(checkpoint_dir):
  """The Kinetics-600 RGB classifier on a format-exact checkpoint."""
  return i3d.load_classifier("rgb600", checkpoint_dir=checkpoint_dir, download=False)


@pytest.fixture(scope="session")
def towers(joint_classifier, rgb600_classifier, checkpoint_dir):
  """(checkpoint prefix, plain InceptionI3d, FastI3d) per released checkpoint tested."""
  def entry(classifier, name):
    return (str(checkpoint_dir / name / "model.ckpt"), classifier.models["rgb" if "rgb" in name
            else "flow"], classifier.towers["rgb" if "rgb" in name else "flow"])
  return {"rgb_imagenet": entry(joint_classifier, "rgb_imagenet"),
          "flow_imagenet": entry(joint_classifier, "flow_imagenet"),
          "rgb_scratch_kin600": entry(rgb600_classifier, "rgb_scratch_kin600")}


@pytest.mark.parametrize("name, frames, size", [
    ("rgb_imagenet", 10, 224), ("flow_imagenet", 9, 224), ("rgb_scratch_kin600", 11, 201)])
def test_fast_logits_match_plain_model_and_reference(towers, name, frames, size):
  prefix, plain, fast = towers[name]
  clip = random_clip(frames, plain.input_channels, seed=frames, batch=2, size=size)
  expected = plain(clip, is_training=False)[0].numpy()
  logits = fast(clip).numpy()
  assert logits.shape == expected.shape == (2, plain.num_classes)
  assert relative_error(logits, expected) < TOLERANCE
  assert relative_error(logits, reference_logits(prefix, clip)) < TOLERANCE


def test_classifier_runs_the_fast_towers(joint_classifier):
  assert all(isinstance(t, FastI3d) for t in joint_classifier.towers.values())
  rgb, flow = random_clip(9, 3, seed=1), random_clip(9, 2, seed=2)
  plain = sum(m(x, is_training=False)[0].numpy()
              for m, x in ((joint_classifier.models["rgb"], rgb),
                           (joint_classifier.models["flow"], flow)))
  assert relative_error(joint_classifier(rgb=rgb, flow=flow), plain) < TOLERANCE


def test_unoptimised_classifier_runs_the_plain_models(joint_classifier):
  plain = i3d.Classifier(joint_classifier.models, joint_classifier.labels, optimize=False)
  assert plain.towers == plain.models
  rgb, flow = random_clip(9, 3, seed=3), random_clip(9, 2, seed=3)
  assert relative_error(plain(rgb=rgb, flow=flow), joint_classifier(rgb=rgb, flow=flow)) < TOLERANCE


def test_fold_batch_norm_equals_convolution_then_batch_norm(towers):
  unit = towers["rgb_imagenet"][1].units["Conv3d_2c_3x3"]
  x = tf.random.stateless_normal([1, 3, 5, 5, 64], seed=(0, 1))
  w, b = fold_batch_norm(unit)
  folded = tf.nn.relu(tf.nn.conv3d(x, w.astype(np.float32), [1] * 5, "SAME") + b)
  assert relative_error(folded, unit(x, is_training=False).numpy()) < 1e-5


def test_inception_blocks_read_their_input_with_one_fused_1x1_convolution(towers):
  fast = towers["rgb_imagenet"][2]
  blocks = [layer for layer in fast.layers if hasattr(layer, "pointwise")]
  assert len(blocks) == len(INCEPTION_CHANNELS)
  for block, channels in zip(blocks, INCEPTION_CHANNELS.values()):
    assert block.pointwise.w.shape[-1] == channels[0] + channels[1] + channels[3]


def test_fast_tower_rejects_bad_input_like_the_plain_model(towers):
  with pytest.raises(ValueError, match="at least 9 frames"):
    towers["rgb_imagenet"][2](random_clip(8, 3))


NATIVE_BF16 = hardware.is_native("bfloat16", cpu.cpu_flags() or frozenset())
REDUCED_TOLERANCE = 1e-2  # relative to the largest logit (issue 17)


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no AVX512_BF16/AMX-BF16: bfloat16 "
                                            "would be emulated (see i3d.model.hardware)")
@pytest.mark.parametrize("name", ["rgb_imagenet", "flow_imagenet"])
def test_bfloat16_logits_are_float32_and_close_to_float32(towers, name):
  _, plain, fast = towers[name]
  reduced = FastI3d(plain, tf.bfloat16)
  assert reduced.layers[0].w.dtype == tf.bfloat16
  clip = random_clip(9, plain.input_channels, seed=4)
  logits = reduced(clip)
  assert logits.dtype == tf.float32
  assert 0 < relative_error(logits, fast(clip).numpy()) < REDUCED_TOLERANCE


@pytest.mark.parametrize("width, relu", [(20, True), (19, False), (1, True)])
def test_paired_columns_conv_equals_the_stride_2_convolution(width, relu):
  rng = np.random.default_rng(width)
  w = rng.normal(size=(7, 7, 7, 3, 8))
  b = rng.normal(size=8)
  x = tf.constant(rng.normal(size=(2, 9, 11, width, 3)), tf.float32)
  expected = tf.nn.conv3d(x, w.astype(np.float32), (1, 2, 2, 2, 1), "SAME") + b
  if relu:
    expected = tf.nn.relu(expected)
  paired = PairedColumnsConv(w, b, (2, 2, 2), relu=relu)
  assert paired.w.shape == (7, 7, 4, 6, 8)
  assert relative_error(paired(x), expected.numpy()) < 1e-5
  traced = tf.function(paired, input_signature=[tf.TensorSpec([None] * 4 + [3], tf.float32)])
  assert relative_error(traced(x), expected.numpy()) < 1e-5


@pytest.mark.parametrize("frames, relu", [(1, True), (2, False), (9, True), (10, True)])
def test_temporal_winograd_conv_equals_the_3x3x3_convolution(frames, relu):
  rng = np.random.default_rng(frames)
  w, b = rng.normal(size=(3, 3, 3, 6, 5)), rng.normal(size=5)
  x = rng.normal(size=(2, frames, 7, 4, 6))
  expected = tf.nn.conv3d(x, w, (1,) * 5, "SAME").numpy() + b  # float64, no transform
  if relu:
    expected = np.maximum(expected, 0)
  exact = TemporalWinogradConv(w, b, relu=relu, dtype=tf.float64)
  assert exact(tf.constant(x)).shape == expected.shape
  assert relative_error(exact(tf.constant(x)), expected) < 1e-12  # the same sum, reordered
  traced = tf.function(TemporalWinogradConv(w, b, relu=relu),
                       input_signature=[tf.TensorSpec([None] * 4 + [6], tf.float32)])
  assert relative_error(traced(tf.constant(x, tf.float32)), expected) < 1e-5
  with pytest.raises(ValueError, match="stride 1"):
    TemporalWinogradConv(w, b, (1, 2, 2))


def test_bfloat16_cpu_towers_pair_the_rgb_stem_and_use_winograd_where_it_pays(towers):
  if tf.config.list_physical_devices("GPU"):
    pytest.skip("these are chosen on CPUs only (where they were measured)")
  rgb = FastI3d(towers["rgb_imagenet"][1], tf.bfloat16)
  flow = FastI3d(towers["flow_imagenet"][1], tf.bfloat16)
  assert type(rgb.layers[0]) is PairedColumnsConv  # 3 channels: a quarter of pairs was padding
  assert type(flow.layers[0]) is FusedConv  # 2 channels pair already
  pays = hardware.bfloat16_winograd_pays(cpu.cpu_flags())
  wide = TemporalWinogradConv if pays else FusedConv
  for tower in (rgb, flow):
    assert type(tower.layers[3]) is wide  # Conv3d_2c_3x3, 64 channels
    blocks = [layer for layer in tower.layers if isinstance(layer, FastInceptionBlock)]
    assert len(blocks) == 9
    assert all(type(b.conv_1) is wide for b in blocks)  # 96-192 channels
    assert all(type(b.conv_2) is FusedConv for b in blocks)  # 16-48 < WINOGRAD_MIN_CHANNELS
    assert all(b.conv_2.w.shape[3] < WINOGRAD_MIN_CHANNELS for b in blocks)
  float32 = towers["rgb_imagenet"][2]
  assert type(float32.layers[0]) is type(float32.layers[3]) is FusedConv  # float32 stays exact


def test_float16_runs_on_any_device_and_is_close_to_float32(towers):
  _, plain, fast = towers["rgb_imagenet"]
  reduced = FastI3d(plain, tf.float16)  # pools in float32 where the device has no float16 kernel
  assert reduced.layers[0].w.dtype == tf.float16
  clip = random_clip(9, 3, seed=4)
  logits = reduced(clip)
  assert logits.dtype == tf.float32
  assert 0 < relative_error(logits, fast(clip).numpy()) < REDUCED_TOLERANCE


@pytest.mark.parametrize("precision, tolerance", [
    ("float32", TOLERANCE),
    pytest.param("bfloat16", REDUCED_TOLERANCE, marks=pytest.mark.skipif(
        not NATIVE_BF16, reason="this CPU has no AVX512_BF16/AMX-BF16: bfloat16 would be "
                                "emulated (see i3d.model.hardware)"))])
def test_fast_features_of_a_cut_model_match_the_plain_model(checkpoint_dir, precision, tolerance):
  model = i3d.InceptionI3d(400, final_endpoint="Mixed_4c")
  i3d.load_checkpoint(model, "rgb_imagenet", checkpoint_dir=checkpoint_dir, download=False)
  clip = random_clip(9, 3, seed=8, size=112)
  expected = model(clip, is_training=False)[0].numpy()
  features = FastI3d(model, tf.as_dtype(precision))(clip)
  assert features.dtype == tf.float32 and features.shape == expected.shape
  assert relative_error(features, expected) < tolerance


def test_unknown_precision_is_a_user_error(checkpoint_dir):
  with pytest.raises(i3d.UserError, match="precision"):
    i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False, precision="int8")


def test_exported_classifier_keeps_its_logits(joint_classifier, tmp_path):
  clf = i3d.Classifier({"rgb": joint_classifier.models["rgb"]}, joint_classifier.labels)
  module = tf.Module()
  module.towers = clf.towers
  module.logits = tf.function(lambda rgb: clf(rgb=rgb), input_signature=[
      tf.TensorSpec([None, None, None, None, 3], tf.float32)])
  tf.saved_model.save(module, str(tmp_path))
  restored = tf.saved_model.load(str(tmp_path))
  clip = random_clip(9, 3, seed=5)
  assert relative_error(restored.logits(clip), clf(rgb=clip).numpy()) < 1e-6

"""Training inputs: the checking pass over labelled records, windows, crops and flips."""

import numpy as np
import pytest
import tensorflow as tf

from i3d.errors import UserError
from i3d.train import data
from tests.train.support import write_set


def test_flipped_flow_is_mirrored_with_its_x_component_negated():
  flow = np.random.default_rng(0).uniform(-1, 1, (3, 4, 5, 2)).astype(np.float32)
  flipped = data.flip_clip(tf.constant(flow), "flow").numpy()
  expected = flow[:, :, ::-1, :].copy()
  expected[..., 0] *= -1
  np.testing.assert_array_equal(flipped, expected)
  rgb = flow[..., :1].repeat(3, axis=-1)
  np.testing.assert_array_equal(data.flip_clip(tf.constant(rgb), "rgb").numpy(), rgb[:, :, ::-1])


def test_clips_are_cut_from_the_stored_frames(tmp_path):
  folder = write_set(tmp_path / "set", 1, frames=6, shards=1)
  clips = data.scan(folder, ("rgb",))
  assert clips.per_class == (1, 1) and clips.labels == ("up", "down")
  shape = data.ClipShape(("rgb",), frames=9, crop=32)
  (inputs, labels), = data.evaluation_batches(clips, shape, batch=2).take(1)
  assert inputs["rgb"].shape == (2, 9, 32, 32, 3) and labels.numpy().tolist() == [0, 1]
  window = inputs["rgb"].numpy()[0]
  np.testing.assert_array_equal(window[6:9], window[0:3])  # a short clip is looped from its start


def test_training_order_does_not_depend_on_where_a_run_starts(tmp_path):
  folder = write_set(tmp_path / "set", 3, frames=9)
  clips = data.scan(folder, ("rgb",))
  shape = data.ClipShape(("rgb",), frames=9, crop=16)
  feed = data.Feed(batch=2)
  straight = [b[0]["rgb"].numpy() for b in data.training_batches(clips, shape, 5, feed).take(5)]
  resumed = [b[0]["rgb"].numpy() for b in data.training_batches(clips, shape, 5, feed, 3).take(2)]
  np.testing.assert_array_equal(np.stack(straight[3:]), np.stack(resumed))


@pytest.mark.parametrize("label_of, message", [
    (lambda i, k: ("sideways", k), "does not match labels.txt"),
    (lambda i, k: ("up", 7), "label 7 'up' does not match"),
    (lambda i, k: (None, None), "has no label"),
])
def test_bad_labels_are_one_clear_line(tmp_path, label_of, message):
  folder = write_set(tmp_path / "set", 1, frames=4, shards=1, label_of=label_of)
  with pytest.raises(UserError, match=message) as error:
    data.scan(folder, ("rgb",))
  assert "\n" not in str(error.value) and "train-00000-of-00001.tfrecord" in str(error.value)


def test_an_empty_class_and_different_class_lists_are_refused(tmp_path):
  folder = write_set(tmp_path / "set", 1, frames=4, shards=1, labels=("up", "down", "still"))
  with pytest.raises(UserError, match="1 class of labels.txt without clips"):
    data.scan(folder, ("rgb",))
  with pytest.raises(UserError, match="line 2"):
    data.check_same_labels(("up", "down"), ("up", "left"), "eval")
  with pytest.raises(UserError, match="no flow stream"):
    data.scan(write_set(tmp_path / "rgb", 1, frames=4, shards=1), ("rgb", "flow"))

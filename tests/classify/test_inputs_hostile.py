"""One input check for every entry point: the classifier refuses short, non-finite or misshapen
clips instead of returning NaN or normal-looking classes, and many views are batched (issue 15,
item 7 and `--windows 200`)."""

import tracemalloc

import numpy as np
import pytest
import tensorflow as tf

from i3d.errors import InputError, UserError
from i3d.inputs import cache, views
from i3d.inputs.settings import InputSettings
from tests.support.cli import one_line_error
from tests.support.clips import random_clip


@pytest.fixture(scope="module")
def rgb_classifier(checkpoint_dir):
  import i3d
  return i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False)


@pytest.mark.parametrize("clip, problem", [
    (random_clip(5, 3), "1 clips of 5 frames; the model needs at least one clip of 9 frames"),
    (random_clip(0, 3), "1 clips of 0 frames"),
    (np.where(random_clip(9, 3) > 0.9, np.nan, random_clip(9, 3)), "NaN or infinite"),
    (random_clip(9, 3).astype(np.int8), "dtype int8"),
    (random_clip(9, 3, size=100), r"shape \(1, 9, 100, 100, 3\)"),
    (random_clip(9, 4), r"shape \(1, 9, 224, 224, 4\)"),
])
def test_classifier_refuses_bad_clips_with_a_value_error(rgb_classifier, clip, problem):
  with pytest.raises(ValueError, match=f"rgb input .*{problem}") as error:
    rgb_classifier(rgb=clip)
  assert isinstance(error.value, InputError) and isinstance(error.value, UserError)


def test_a_good_clip_still_classifies(rgb_classifier):
  logits = rgb_classifier(rgb=random_clip(9, 3)).numpy()
  assert logits.shape == (1, 400) and np.isfinite(logits).all()


def write_npz(tmp_path, array):
  path = tmp_path / "x.npz"
  np.savez(path, rgb=array)
  return path


@pytest.mark.parametrize("array, problem", [
    (np.zeros((1, 9, 224, 224, 3), np.uint8), "dtype uint8"),
    (np.zeros((1, 9, 224, 224, 3), np.complex64), "dtype complex64"),
    (np.zeros((1, 0, 224, 224, 3), np.float32), "0 frames"),
    (np.full((1, 9, 224, 224, 3), np.inf, np.float32), "NaN or infinite"),
])
def test_predict_on_a_bad_npz_is_one_line(checkpoint_dir, tmp_path, capsys, array, problem):
  err = one_line_error(capsys, "predict", write_npz(tmp_path, array), "--eval_type", "rgb",
                       "--checkpoint_dir", checkpoint_dir)
  assert "x.npz: rgb input" in err and problem in err


def test_short_npz_is_looped_not_nan(rgb_classifier, tmp_path):
  from i3d.classify.predict import predict
  result = predict(rgb_classifier, write_npz(tmp_path, random_clip(3, 3)), InputSettings())
  assert (result.frames, result.looped_to) == (3, 9)
  assert all(np.isfinite(p) for _, _, p, _ in result.top)


def test_many_windows_are_copied_out_one_batch_at_a_time(tmp_path, rgb_classifier, monkeypatch):
  clip = random_clip(40, 3)
  path = cache.save_inputs(tmp_path / "x.npz", {"rgb": clip}, {})
  protocol = views.ViewProtocol(windows=100, window_frames=32)
  tracemalloc.start()
  made = views.video_views(path, ["rgb"], InputSettings(), protocol)["rgb"]
  peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  window_bytes = 32 * 224 * 224 * 3 * 4
  assert len(made) == 100 and made.shape == (100, 32, 224, 224, 3)
  assert peak < 10 * window_bytes  # all 100 windows at once would be 100 windows' worth
  sizes = []

  def counted(**inputs):  # what the model is handed each call; no model run keeps it cheap
    sizes.append(inputs["rgb"].shape)
    return {"rgb": tf.fill([len(inputs["rgb"]), 400], float(len(sizes)))}

  monkeypatch.setattr(rgb_classifier, "stream_logits", counted)
  averaged = rgb_classifier.view_logits({"rgb": made}, batch=32)["rgb"]
  assert [s[0] for s in sizes] == [32, 32, 32, 4] and sizes[0][1:] == (32, 224, 224, 3)
  np.testing.assert_allclose(averaged, (32 * (1 + 2 + 3) + 4 * 4) / 100)
  np.testing.assert_array_equal(made[7], views.windows(clip[0], 100, 32)[7])


def test_view_batch_zero_is_one_line(checkpoint_dir, tmp_path, capsys):
  err = one_line_error(capsys, "predict", write_npz(tmp_path, random_clip(9, 3)), "--eval_type",
                       "rgb", "--view_batch", "0", "--checkpoint_dir", checkpoint_dir)
  assert "--view_batch must be at least 1, got 5 and 0" in err

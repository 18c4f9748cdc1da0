"""`i3d predict` on streamed videos: one line per video past `$I3D_MAX_FRAMES`, whole clips
counted and fed in chunks past `$I3D_CHUNK_FRAMES`, windows with TV-L1 only where they are."""

import numpy as np
import pytest

import i3d
from i3d.classify import predict
from i3d.classify.classifier import Classifier
from i3d.inputs import cache, flow, views
from i3d.inputs.settings import InputSettings, TVL1Params
from tests.classify.test_predict import run_predict
from tests.support.videos import write_indexed_video

CHEAP = InputSettings(flow_backend="opencv", flow_params=TVL1Params(
    scales=1, warps=1, inner_iterations=2, outer_iterations=1, median_filtering=1))


@pytest.fixture(scope="module")
def rgb_classifier(checkpoint_dir):
  return i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False)


@pytest.mark.parametrize("windows", [[], ["--windows", "2", "--window_frames", "9"]])
def test_frame_limit_is_one_line_per_video_and_the_others_run(checkpoint_dir, tmp_path, capsys,
                                                              monkeypatch, windows):
  long = write_indexed_video(tmp_path / "long.avi", 30, 25)
  short = write_indexed_video(tmp_path / "short.avi", 9, 25)
  monkeypatch.setenv("I3D_MAX_FRAMES", "10")
  status, out, err = run_predict(capsys, str(long), str(short), "--eval_type", "rgb",
                                 "--no_cache", "--checkpoint_dir", str(checkpoint_dir), *windows)
  assert status == 1
  assert err.splitlines() == [f"i3d predict: error: {long}: more than 10 frames at 25 fps "
                              f"($I3D_MAX_FRAMES); trim it with --time_start/--time_end, or "
                              f"raise the limit"]
  assert out.splitlines()[0] == f"{short} (9 frames)"


def test_whole_clip_past_the_budget_is_counted_and_fed_in_blocks(tmp_path, monkeypatch,
                                                                 rgb_classifier):
  path = write_indexed_video(tmp_path / "clip.avi", 40, 25)
  fed = []
  monkeypatch.setattr(Classifier, "clip_logits", lambda self, blocks, frames, budget=None: (
      fed.append((np.concatenate([b["rgb"] for b in blocks], axis=1), frames, budget))
      or {"rgb": np.zeros((1, 400))}))
  monkeypatch.setenv("I3D_CHUNK_FRAMES", "20")
  logits, frames, seen = predict.video_logits(rgb_classifier, path, CHEAP, use_cache=False)
  [(clip, counted, budget)] = fed
  assert frames == seen == counted == 40 and budget == 20
  np.testing.assert_array_equal(clip, cache.compute_inputs(path, CHEAP, ["rgb"])["rgb"])


def test_streamed_windows_equal_windows_of_the_whole_clip(tmp_path, monkeypatch, joint_classifier):
  path = write_indexed_video(tmp_path / "clip.avi", 30, 25)
  protocol = views.ViewProtocol(windows=2, window_frames=9)
  whole = views.cropped_inputs(path, CHEAP, ["rgb", "flow"], use_cache=False)
  expected = joint_classifier.view_logits(views.views_of(whole, protocol))
  pairs = []
  flow_pairs = flow.flow_pairs
  monkeypatch.setattr(flow, "flow_pairs", lambda first, *a, **k: pairs.append(len(first)) or
                      flow_pairs(first, *a, **k))
  logits, frames, seen = predict.video_logits(joint_classifier, path, CHEAP, protocol,
                                              use_cache=False, view_batch=1)
  assert (frames, seen) == (30, 9)
  assert sum(pairs) == 17  # frames 0-8 and 21-29 of 30: TV-L1 for their pairs only
  for stream in ("rgb", "flow"):
    np.testing.assert_allclose(logits[stream], expected[stream], rtol=1e-5, atol=1e-5)


def test_views_longer_than_the_budget_run_in_chunks(monkeypatch, rgb_classifier):
  """Evaluation and records classify through `view_logits`: whole clips past the budget go to
  `clip_logits` (chunks), all views at once."""
  fed = []
  monkeypatch.setattr(Classifier, "clip_logits", lambda self, blocks, frames, budget=None: (
      fed.append(([b["rgb"].shape for b in blocks], frames)) or {"rgb": np.ones((2, 400))}))
  monkeypatch.setenv("I3D_CHUNK_FRAMES", "120")
  views_long = {"rgb": np.zeros((2, 121, 224, 224, 3), np.float32)}
  np.testing.assert_array_equal(rgb_classifier.view_logits(views_long, batch=1)["rgb"], 1.0)
  assert fed == [([(2, 121, 224, 224, 3)], 121)]

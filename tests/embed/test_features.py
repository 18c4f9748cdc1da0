"""Features equal the independent plain-tf.nn reference pooled the same way; the batch job writes,
resumes and skips bad videos."""

import json

import numpy as np
import pytest

import i3d
from i3d.embed import features
from i3d.errors import UserError
from i3d.inputs import cache, views
from i3d.inputs.settings import InputSettings
from tests.support.clips import random_clip
from tests.support.reference_i3d import reference_endpoint
from tests.support.videos import write_indexed_video


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
  return float(np.abs(actual - expected).max() / np.abs(expected).max())


@pytest.mark.parametrize("stream,channels", [("rgb", 3), ("flow", 2)])
@pytest.mark.parametrize("endpoint", ["Mixed_4c", "Mixed_5c"])
def test_features_equal_reference(checkpoint_dir, stream, channels, endpoint):
  clips = random_clip(13, channels, seed=3, batch=2, size=64)
  got = i3d.extract_features(clips, stream, endpoint, window_frames=8, stride=3,
                             checkpoint_dir=checkpoint_dir, download=False)
  prefix = str(checkpoint_dir / f"{stream}_imagenet" / "model.ckpt")
  starts = [0, 3, 5]  # every 3 frames, then one window ending at frame 13
  for clip, features_of_clip in zip(clips, got):
    windows = np.stack([clip[s:s + 8] for s in starts])
    expected = reference_endpoint(prefix, windows, endpoint).mean(axis=(1, 2, 3))
    assert features_of_clip.shape == expected.shape
    assert _relative_error(features_of_clip, expected) < 1e-4


def test_window_starts_cover_every_frame():
  np.testing.assert_array_equal(views.window_starts(13, 8, stride=3), [0, 3, 5])
  np.testing.assert_array_equal(views.window_starts(32, 16, stride=16), [0, 16])
  np.testing.assert_array_equal(views.window_starts(33, 16, stride=16), [0, 16, 17])
  np.testing.assert_array_equal(views.window_starts(20, 8, 3), [0, 6, 12])


def test_short_clip_is_looped_and_whole_clip_is_one_window(checkpoint_dir):
  extractor = features.load_extractor({"rgb": "rgb_imagenet"},
                                      features.FeatureSettings("Conv3d_2b_1x1", 6, 6),
                                      checkpoint_dir, download=False)
  clip = random_clip(4, 3, size=32)[0]
  out, bounds = extractor.clip_features("rgb", clip)
  assert out.shape == (1, 64) and bounds.tolist() == [[0, 4]]
  looped, _ = extractor.clip_features("rgb", views.loop_to_length(clip, 6))
  np.testing.assert_array_equal(out, looped)
  whole = features.FeatureSettings("Conv3d_2b_1x1", whole_clip=True)
  assert whole.windows(40)[0].tolist() == [0] and whole.windows(40)[1] == 40


def test_unpooled_features_keep_the_map(checkpoint_dir):
  got = i3d.extract_features(random_clip(8, 3, size=32), "rgb", "Conv3d_1a_7x7",
                             window_frames=8, pool=False, checkpoint_dir=checkpoint_dir,
                             download=False)
  assert got.shape == (1, 1, 4, 16, 16, 64)


def test_bad_settings_are_user_errors():
  with pytest.raises(UserError, match="unknown endpoint"):
    features.FeatureSettings("Mixed_9z")
  with pytest.raises(UserError, match="window_frames >= 9"):
    features.FeatureSettings("Logits", window_frames=8)


def _jobs(tmp_path):
  good = write_indexed_video(tmp_path / "good.avi", 12, 25)
  bad = tmp_path / "bad.mp4"
  bad.write_text("not a video")
  return [(features.video_id(p), p) for p in (good, bad)]


def test_batch_job_writes_resumes_and_skips_bad_videos(checkpoint_dir, tmp_path):
  settings = features.FeatureSettings("Mixed_3b", window_frames=8, stride=4)
  extractor = features.load_extractor({"rgb": "rgb_imagenet"}, settings, checkpoint_dir,
                                      download=False)
  out = tmp_path / "feats"
  first = features.extract_videos(extractor, _jobs(tmp_path), out, progress=False)
  assert first.written == ["good"] and [f["id"] for f in first.failed] == ["bad"]
  record = json.loads((out / "good.json").read_text())
  assert record["windows"] == [[0.0, 0.32], [0.16, 0.48]]
  assert record["files"] == {"rgb": "good_rgb.npy"}
  assert record["settings"]["checkpoints"] == {"rgb": "rgb_imagenet"}
  assert np.load(out / "good_rgb.npy").shape == (2, 256)
  failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
  assert failures[0]["id"] == "bad" and "bad.mp4" in failures[0]["reason"]

  written = {p.name: p.stat().st_mtime_ns for p in out.glob("good*")}
  again = features.extract_videos(extractor, _jobs(tmp_path), out, progress=False)
  assert again.skipped == ["good"] and again.written == []
  assert {p.name: p.stat().st_mtime_ns for p in out.glob("good*")} == written

  other = features.load_extractor({"rgb": "rgb_imagenet"},
                                  features.FeatureSettings("Mixed_3b", 8, 8), checkpoint_dir,
                                  download=False)
  with pytest.raises(UserError, match="other settings"):
    features.extract_videos(other, _jobs(tmp_path), out, progress=False)


def test_features_of_a_video_are_those_of_its_inputs(checkpoint_dir, tmp_path):
  settings = features.FeatureSettings("Mixed_3b", window_frames=8, stride=4)
  extractor = features.load_extractor({"rgb": "rgb_imagenet"}, settings, checkpoint_dir,
                                      download=False)
  video = write_indexed_video(tmp_path / "v.avi", 12, 25)
  features.extract_videos(extractor, [("v", video)], tmp_path / "out", progress=False)
  inputs = views.cropped_inputs(video, InputSettings(), ["rgb"], use_cache=False)["rgb"][0]
  prefix = str(checkpoint_dir / "rgb_imagenet" / "model.ckpt")
  expected = reference_endpoint(prefix, np.stack([inputs[0:8], inputs[4:12]]),
                                "Mixed_3b").mean(axis=(1, 2, 3))
  assert _relative_error(np.load(tmp_path / "out" / "v_rgb.npy"), expected) < 1e-4


def test_duplicate_ids_are_refused(tmp_path):
  with pytest.raises(UserError, match="both be written"):
    features.extract_videos(None, [("a", tmp_path / "x/a.mp4"), ("a", tmp_path / "y/a.mp4")],
                            tmp_path / "out")


def test_inputs_npz_from_preprocess(checkpoint_dir, tmp_path):
  rgb = random_clip(10, 3, seed=5)  # caches hold 224x224 crops (anything else is refused)
  path = cache.save_inputs(tmp_path / "clip_inputs.npz", {"rgb": rgb}, {})
  extractor = features.load_extractor({"rgb": "rgb_imagenet"},
                                      features.FeatureSettings("Conv3d_2c_3x3", 10, 10),
                                      checkpoint_dir, download=False)
  result = features.extract_videos(extractor, [(features.video_id(path), path)],
                                   tmp_path / "out", progress=False)
  assert result.written == ["clip"]
  prefix = str(checkpoint_dir / "rgb_imagenet" / "model.ckpt")
  expected = reference_endpoint(prefix, rgb, "Conv3d_2c_3x3").mean(axis=(1, 2, 3))
  assert _relative_error(np.load(tmp_path / "out" / "clip_rgb.npy"), expected) < 1e-4

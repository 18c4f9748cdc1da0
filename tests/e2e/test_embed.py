"""`i3d features` and `i3d fvd` as users run them: the first run of each in a subprocess, the
reruns in this process (a subprocess costs a TensorFlow start)."""

import json
import subprocess

import cv2
import numpy as np
import pytest

import i3d
from tests.support.cli import run_cli
from tests.support.videos import write_indexed_video


def _run(*args):
  return subprocess.run(["i3d", *map(str, args)], capture_output=True, text=True, timeout=600)


def test_features_of_both_streams_with_a_bad_video(checkpoint_dir, tmp_path, capsys):
  good = write_indexed_video(tmp_path / "good.avi", 12, 25)
  bad = tmp_path / "bad.mp4"
  bad.write_text("not a video")
  args = ["features", good, bad, "--eval_type", "joint", "--endpoint", "Mixed_3c",
          "--window_frames", "10", "--stride", "10", "--flow_backend", "opencv",
          "--checkpoint_dir", checkpoint_dir, "--output_dir", tmp_path / "out", "--no_progress"]
  first = _run(*args)
  assert first.returncode == 1, first.stderr
  assert "1 video written, 0 already done, 1 failed" in first.stdout
  assert "bad.mp4" in first.stderr
  record = json.loads((tmp_path / "out" / "good.json").read_text())
  assert record["windows"] == [[0.0, 0.4], [0.08, 0.48]]  # the last window ends at frame 12
  assert record["settings"]["checkpoints"] == {"rgb": "rgb_imagenet", "flow": "flow_imagenet"}
  for stream in ("rgb", "flow"):
    assert np.load(tmp_path / "out" / f"good_{stream}.npy").shape == (2, 480)
  capsys.readouterr()
  assert run_cli(*args) == 1
  assert "0 videos written, 1 already done, 1 failed" in capsys.readouterr().out


def test_fvd_of_folders_equals_the_python_api(checkpoint_dir, tmp_path, capsys):
  rng = np.random.default_rng(7)
  real = rng.integers(0, 256, (3, 9, 32, 32, 3), dtype=np.uint8)
  generated = rng.integers(0, 256, (3, 9, 32, 32, 3), dtype=np.uint8)
  np.save(tmp_path / "real.npy", real)
  for i, clip in enumerate(generated[:2]):
    (tmp_path / "generated" / f"clip{i}").mkdir(parents=True)
    for t, frame in enumerate(clip):
      cv2.imwrite(str(tmp_path / "generated" / f"clip{i}" / f"{t:03d}.png"), frame[..., ::-1])
  np.save(tmp_path / "generated" / "rest.npy", generated[2:])
  result = _run("fvd", "--real", tmp_path / "real.npy", "--generated", tmp_path / "generated",
                "--num_frames", 9, "--kvd", "--checkpoint_dir", checkpoint_dir, "--no_progress",
                "--rgb_checkpoint", "rgb_imagenet")
  assert result.returncode == 0, result.stderr
  warned = [line for line in result.stderr.splitlines() if "rank-deficient" in line]
  assert [line.split("'s")[0] for line in warned] == ["i3d: warning: the real set",
                                                      "i3d: warning: the generated set"]
  lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
  with pytest.warns(i3d.fvd.RankDeficiencyWarning):
    expected = i3d.fvd.frechet_video_distance(real, generated, checkpoint_dir=checkpoint_dir,
                                              download=False, checkpoint="rgb_imagenet")
  value, protocol = lines["FVD"].split(" ", 1)
  assert float(value) == pytest.approx(expected, abs=1e-4, rel=1e-5)
  assert protocol == ("(rgb_imagenet weights; 3 real and 3 generated clips of 9 frames at 32x32 "
                      "(resized to 224x224))")
  assert lines["KVD"].endswith(protocol)
  capsys.readouterr()
  assert run_cli("fvd", "--real", tmp_path / "real.npy", "--generated", tmp_path / "generated",
                 "--num_frames", 10, "--checkpoint_dir", checkpoint_dir, "--no_progress",
                 "--rgb_checkpoint", "rgb_imagenet") == 2
  assert "fewer than the 10" in capsys.readouterr().err

"""`i3d train` end to end: a tiny run made by the command, then used as a checkpoint with its own
labels by `i3d predict` (`--checkpoint RUN` and `--rgb_checkpoint RUN`)."""

import json

import pytest

from i3d.testing import write_clip
from tests.support.cli import one_line_error, run_cli
from tests.train.support import write_set


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp("cli-train")
  train = write_set(root / "train", 2, frames=10)
  status = run_cli("train", "--records", train, "--eval_records", train, "--init", "scratch",
                   "--clip_frames", 9, "--crop_size", 32, "--batch", 2, "--steps", 2,
                   "--batchnorm", "trained", "--output_dir", root / "run", "--quiet")
  assert status in (0, None)
  return root


@pytest.mark.parametrize("flag", ["--checkpoint", "--rgb_checkpoint"])
def test_predict_uses_the_runs_classes(run, flag, capsys):
  video = write_clip(run / f"clip{flag}.mp4", None, 0.5, (96, 72))
  capsys.readouterr()
  assert run_cli("predict", video, flag, run / "run", "--eval_type", "rgb", "--json",
                 "--top_k", 2, "--quiet", "--offline") in (0, None)
  found = json.loads(capsys.readouterr().out)
  text = json.dumps(found)
  assert '"up"' in text and '"down"' in text, text


def test_train_refuses_changed_settings_in_one_line(run, capsys):
  err = one_line_error(capsys, "train", "--records", run / "train", "--init", "scratch",
                       "--clip_frames", 9, "--crop_size", 32, "--batch", 2, "--steps", 3,
                       "--batchnorm", "trained", "--output_dir", run / "run", "--quiet")
  assert "steps: 2 -> 3" in err and "eval_records" in err


def test_bad_records_are_one_line(tmp_path, capsys):
  err = one_line_error(capsys, "train", "--records", tmp_path, "--output_dir", tmp_path / "run",
                       "--steps", 1)
  assert "labels.txt" in err

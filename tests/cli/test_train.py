"""`i3d train` end to end, one run for the module: videos of gratings drifting up or down made
into records by `i3d preprocess --dataset`, a run from random weights that learns them (16
steps of 4 clips, 32x32 crops of 9 frames, BatchNorm trained), then the run used as a checkpoint
with its own labels by `i3d predict` (`--checkpoint RUN` and `--rgb_checkpoint RUN`) and
`i3d evaluate --records`."""

import json

import pytest
import tensorflow as tf

from i3d.testing import write_clip
from i3d.train import saving
from tests.support.cli import one_line_error, run_cli
from tests.train.support import write_videos

TRAIN = ("--init", "scratch", "--clip_frames", 9, "--crop_size", 32, "--batch", 4, "--steps", 16,
         "--learning_rate", 0.02, "--batchnorm", "trained", "--dropout_keep_prob", 1.0, "--quiet")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp("cli-train")
  for name, clips, seed in (("train", 4, 0), ("test", 1, 1)):
    videos = write_videos(root / "videos" / name, clips, seed=seed)
    assert run_cli("preprocess", "--dataset", videos, "--output_dir", root / name, "--streams",
                   "rgb", "--workers", 1, "--quiet") in (0, None)
  assert run_cli("train", "--records", root / "train", "--eval_records", root / "test", *TRAIN,
                 "--output_dir", root / "run") in (0, None)
  return root


def test_the_run_learns_and_is_a_released_layout_model_with_its_labels(run):
  state = json.loads((run / "run" / "state.json").read_text())
  assert state["step"] == 16 and state["train_top1"] == 1.0 and state["loss"] < 0.1, state
  best = saving.read_state(run / "run" / saving.BEST_DIR)  # the checkpoint of the best step
  assert (best["step"], best["best_top1"]) == (state["best_step"], state["best_top1"]), best
  assert tf.train.load_checkpoint(str(run / "run" / saving.BEST_DIR / saving.PREFIX))
  assert [p.name for p in saving.saved(run / "run")] == ["step-00000016"]
  reader = tf.train.load_checkpoint(str(run / "run" / "rgb" / "model.ckpt"))
  shapes = reader.get_variable_to_shape_map()
  assert shapes["RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/w"] == [1, 1, 1, 1024, 2]
  labels = (run / "train" / "labels.txt").read_text()
  assert sorted(labels.split()) == ["down", "up"]
  assert (run / "run" / "rgb" / "labels.txt").read_text() == labels
  summary = (run / "run" / "summary.md").read_text()
  assert "steps: 16 of 16" in summary and "evaluation top-1" in summary
  assert list((run / "run" / "tensorboard").iterdir())


@pytest.mark.parametrize("flag", ["--checkpoint", "--rgb_checkpoint"])
def test_predict_uses_the_runs_classes(run, flag, capsys):
  video = write_clip(run / f"clip{flag}.mp4", None, 0.5, (96, 72))
  capsys.readouterr()
  assert run_cli("predict", video, flag, run / "run", "--eval_type", "rgb", "--json",
                 "--top_k", 2, "--quiet", "--offline") in (0, None)
  found = json.loads(capsys.readouterr().out)
  text = json.dumps(found)
  assert '"up"' in text and '"down"' in text, text


def test_evaluate_scores_records_with_the_runs_classes(run):
  assert run_cli("evaluate", "--records", run / "test", "--checkpoint", run / "run",
                 "--eval_type", "rgb", "--output_dir", run / "eval", "--quiet",
                 "--offline") in (0, None)
  predictions = [json.loads(line) for line in
                 (run / "eval" / "predictions.jsonl").read_text().splitlines()]
  assert sorted((p["id"].split("/")[0], p["label"]) for p in predictions) == [
      ("down", "down"), ("up", "up")]
  assert all(sorted(p["classes"]) == ["down", "up"] for p in predictions), predictions
  metrics = json.loads((run / "eval" / "metrics.json").read_text())
  right = sum(p["classes"][0] == p["label"] for p in predictions)
  assert metrics["num_videos"] == 2 and metrics["top1"] == right / 2, metrics


def test_train_refuses_changed_settings_in_one_line(run, capsys):
  err = one_line_error(capsys, "train", "--records", run / "train", *TRAIN[:-1], "--steps", 17,
                       "--output_dir", run / "run", "--quiet")
  assert "steps: 16 -> 17" in err and "eval_records" in err


def test_bad_records_are_one_line(tmp_path, capsys):
  err = one_line_error(capsys, "train", "--records", tmp_path, "--output_dir", tmp_path / "run",
                       "--steps", 1)
  assert "labels.txt" in err

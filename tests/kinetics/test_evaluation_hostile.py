"""Evaluation bookkeeping under hostile or broken state: poison videos, fixed files, damaged run
files, strict metrics and one-line errors (issue 15, items 4, 5 and 9)."""

import errno
import json
import os

import numpy as np
import pytest

import i3d
from i3d import kinetics
from i3d._util.jsonl import JsonLines
from i3d.errors import UserError
from i3d.inputs import cache
from i3d.kinetics import evaluation, scoring
from i3d.model.labels import load_label_map
from i3d.runs import folder as runs
from i3d.testing import write_clip, write_validation_set
from tests.support.cli import one_line_error
from tests.support.runs import died_on

LABEL = load_label_map(400)[0]


@pytest.fixture(scope="module")
def rgb_classifier(checkpoint_dir):
  return i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False)


def validation_set(tmp_path, kinds):
  """(clips, video dir) of generated clips `vid_00`, `vid_01`, ... of the given kinds."""
  specs = [(f"vid_{i:02d}", LABEL, kind) for i, kind in enumerate(kinds)]
  annotations, video_dir = write_validation_set(tmp_path, specs, seconds=0.4, size=(64, 48))
  return kinetics.read_annotations(annotations).clips, video_dir


def run(classifier, clips, video_dir, output, **config):
  return evaluation.evaluate(classifier, clips, video_dir, output,
                             evaluation.EvalConfig(**config), progress=False)


def strict_json(path):
  def refuse(name):
    raise AssertionError(f"{path} holds {name}")
  return json.loads(path.read_text(), parse_constant=refuse)


def test_nothing_scored_gives_strict_json_with_null_and_a_reason(tmp_path, rgb_classifier):
  clips, video_dir = validation_set(tmp_path, ["corrupt", "missing"])
  result = run(rgb_classifier, clips, video_dir, tmp_path / "run")
  metrics = strict_json(tmp_path / "run" / "metrics.json")
  assert [metrics[k] for k in scoring.SCORES] == [None] * 4
  assert metrics["not_scored"] == "no video was scored (1 missing, 1 failed)"
  assert scoring.score_line(result).startswith("no video was scored")
  assert "| top-1 accuracy | n/a |" in (tmp_path / "run" / "summary.md").read_text()


def test_a_failed_video_is_tried_again_once_its_file_changes(tmp_path, rgb_classifier,
                                                             monkeypatch):
  clips, video_dir = validation_set(tmp_path, ["generated", "corrupt"])
  output = tmp_path / "run"
  assert run(rgb_classifier, clips, video_dir, output)["num_failed"] == 1
  loaded = []
  real = evaluation.cropped_inputs
  monkeypatch.setattr(evaluation, "cropped_inputs", lambda path, *a: loaded.append(path.name)
                      or real(path, *a))
  assert run(rgb_classifier, clips, video_dir, output)["num_failed"] == 1 and loaded == []
  bad = kinetics.local_clips(video_dir)[clips[1].filename]
  write_clip(bad, None, 0.4, (64, 48), seed=7)  # the user repairs the file
  result = run(rgb_classifier, clips, video_dir, output)
  assert (result["num_videos"], result["num_failed"]) == (2, 0) and loaded == [bad.name]
  assert JsonLines(output / runs.FAILURES_FILE).records == []


def test_retry_failed_tries_unchanged_failures_again(tmp_path, rgb_classifier, monkeypatch):
  clips, video_dir = validation_set(tmp_path, ["corrupt"])
  run(rgb_classifier, clips, video_dir, tmp_path / "run")
  loaded = []
  monkeypatch.setattr(evaluation, "cropped_inputs", lambda path, *a: loaded.append(path) or {})
  run(rgb_classifier, clips, video_dir, tmp_path / "run")
  assert loaded == []
  run(rgb_classifier, clips, video_dir, tmp_path / "run", retry_failed=True)
  assert len(loaded) == 1


def test_a_video_that_killed_the_run_twice_is_recorded_failed(tmp_path, rgb_classifier,
                                                               monkeypatch):
  clips, video_dir = validation_set(tmp_path, ["generated", "generated"])
  output = tmp_path / "run"
  output.mkdir()
  poison = kinetics.local_clips(video_dir)[clips[0].filename]
  seen_started = []
  real = evaluation.cropped_inputs

  def load(path, *args):  # what a crash would leave: the start is on disk before decoding
    records = JsonLines(output / runs.STARTED_FILE).records
    seen_started.append(any(r["id"] == parse_id(path) for r in records))
    return real(path, *args)

  monkeypatch.setattr(evaluation, "cropped_inputs", load)
  died_on(output / runs.STARTED_FILE, clips[0].youtube_id, poison)  # two earlier runs died on it
  result = run(rgb_classifier, clips, video_dir, output)
  assert (result["num_videos"], result["num_failed"]) == (1, 1)
  assert "the run died 2 times while this video was being processed" in \
      result["failed"][0]["reason"]
  assert seen_started == [True]  # only the other video was loaded, after its start was noted


def parse_id(path):
  return kinetics.parse_filename(path.name)[0]


def test_one_crash_is_retried_so_kill_and_resume_keeps_working(tmp_path, rgb_classifier):
  clips, video_dir = validation_set(tmp_path, ["generated"])
  output = tmp_path / "run"
  output.mkdir()
  path = kinetics.local_clips(video_dir)[clips[0].filename]
  died_on(output / runs.STARTED_FILE, clips[0].youtube_id, path, times=1)
  assert run(rgb_classifier, clips, video_dir, output)["num_videos"] == 1


def test_duplicate_and_foreign_prediction_lines_count_once(tmp_path, rgb_classifier, capsys):
  clips, video_dir = validation_set(tmp_path, ["generated", "generated"])
  output = tmp_path / "run"
  run(rgb_classifier, clips, video_dir, output)
  lines = (output / evaluation.PREDICTIONS_FILE).read_text().splitlines()
  foreign = dict(json.loads(lines[0]), id="someone_else")
  with open(output / evaluation.PREDICTIONS_FILE, "a") as f:
    f.write(lines[0] + "\n" + json.dumps(foreign) + "\n")
  result = run(rgb_classifier, clips, video_dir, output)
  assert result["num_videos"] == 2
  assert "1 lines name no clip of this run" in capsys.readouterr().err


@pytest.mark.parametrize("line", ['{}', '{"id": "vid_00", "label": "abseiling", "classes": '
                                  '["not a class", "a", "b", "c", "d"], "scores": [1, 0, 0, 0, 0]}',
                                  '{"id": "vid_00", "label": "abseiling"}'])
def test_malformed_prediction_lines_are_one_line_errors(tmp_path, rgb_classifier, line):
  clips, video_dir = validation_set(tmp_path, ["generated"])
  output = tmp_path / "run"
  run(rgb_classifier, clips, video_dir, output)
  with open(output / evaluation.PREDICTIONS_FILE, "a") as f:
    f.write(line + "\n")
  if line == "{}":  # no id: foreign, ignored
    assert run(rgb_classifier, clips, video_dir, output)["num_videos"] == 1
    return
  with pytest.raises(UserError, match=r"predictions.jsonl record 2 \(vid_00\) is malformed"):
    run(rgb_classifier, clips, video_dir, output)


def test_damaged_run_json_is_a_user_error(tmp_path, rgb_classifier):
  clips, video_dir = validation_set(tmp_path, ["missing", "generated"])
  for text in ("{not json", "[1, 2]", "\xff"):
    output = tmp_path / f"run{len(text)}"
    output.mkdir()
    (output / runs.RUN_FILE).write_text(text, encoding="latin-1")
    with pytest.raises(UserError, match="run.json is damaged"):
      run(rgb_classifier, clips, video_dir, output)


def test_a_malformed_cache_is_recomputed_not_a_failure(tmp_path, rgb_classifier, capsys):
  clips, video_dir = validation_set(tmp_path, ["generated"])
  path = kinetics.local_clips(video_dir)[clips[0].filename]
  cache.save_inputs(cache.default_cache_path(path),
                    {"rgb": np.zeros((1, 10, 50, 50, 3), np.float32)},
                    evaluation.EvalConfig().input_settings.record(path))
  result = run(rgb_classifier, clips, video_dir, tmp_path / "run")
  assert (result["num_videos"], result["num_failed"]) == (1, 0)
  assert "ignoring the cache" in capsys.readouterr().err


def annotations(tmp_path):
  clips, video_dir = validation_set(tmp_path, ["generated"])
  return kinetics.write_annotations(clips, tmp_path / "a.csv"), video_dir


@pytest.mark.parametrize("flags, words", [
    (["--video_dir", "/nonexistent/videos"], "video folder /nonexistent/videos does not exist"),
    (["--workers", "0"], "workers and view_batch must be at least 1, got 0 and 4"),
    (["--view_batch", "0"], "workers and view_batch must be at least 1, got 2 and 0"),
    (["--max_samples", "-1"], "max_samples must be 0 or more, got -1"),
    (["--output_dir", "/sys/i3d-run"], "cannot write to /sys/i3d-run"),
    (["--top_k", "3"], "top_k must be at least 5"),
])
def test_evaluate_flags_and_folders_are_one_line_errors(tmp_path, capsys, checkpoint_dir, flags,
                                                       words):
  path, video_dir = annotations(tmp_path)
  base = {"--annotations": path, "--video_dir": video_dir, "--output_dir": tmp_path / "out"}
  base.update(dict(zip(flags[::2], flags[1::2])))
  argv = [x for pair in base.items() for x in pair]
  err = one_line_error(capsys, "evaluate", *argv, "--eval_type", "rgb",
                       "--checkpoint_dir", checkpoint_dir)
  assert words in err


def test_no_clip_in_the_video_folder_is_an_error(tmp_path, rgb_classifier):
  clips, _ = validation_set(tmp_path, ["generated"])
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match="none of the 1 annotated clips is in"):
    run(rgb_classifier, clips, tmp_path / "empty", tmp_path / "run")


@pytest.mark.parametrize("content", [
    "[]", '{"top1": 0.5}', "nan", "{bad",
    json.dumps({"eval_type": "rgb", "protocol": "p", "top1": "x"})])
def test_report_on_malformed_metrics_is_one_line(tmp_path, capsys, content):
  (tmp_path / "metrics.json").write_text(content)
  err = one_line_error(capsys, "report", tmp_path)
  assert "metrics.json" in err


def test_report_on_malformed_values_is_one_line(tmp_path, rgb_classifier, capsys):
  clips, video_dir = validation_set(tmp_path, ["generated"])
  run(rgb_classifier, clips, video_dir, tmp_path / "run")
  metrics = strict_json(tmp_path / "run" / "metrics.json")
  metrics["confusion"] = {"classes": ["a"], "counts": "oops"}
  (tmp_path / "run" / "metrics.json").write_text(json.dumps(metrics))
  err = one_line_error(capsys, "report", tmp_path / "run")
  assert "holds malformed values" in err


def test_a_video_over_the_frame_limit_is_one_line_in_failures(tmp_path, rgb_classifier,
                                                               monkeypatch):
  clips, video_dir = validation_set(tmp_path, ["generated", "generated"])
  long = kinetics.local_clips(video_dir)[clips[0].filename]
  write_clip(long, None, 2.0, (64, 48), seed=3)  # 50 frames; the other has 10
  monkeypatch.setenv("I3D_MAX_FRAMES", "20")
  result = run(rgb_classifier, clips, video_dir, tmp_path / "run")
  assert (result["num_videos"], result["num_failed"]) == (1, 1)
  [failure] = JsonLines(tmp_path / "run" / runs.FAILURES_FILE).records
  assert failure["reason"] == (f"{long}: more than 20 frames at 25 fps ($I3D_MAX_FRAMES); trim "
                               f"it with --time_start/--time_end, or raise the limit")


def test_the_machines_failure_stops_the_run_and_is_not_the_videos(tmp_path, rgb_classifier,
                                                                 monkeypatch):
  clips, video_dir = validation_set(tmp_path, ["generated", "generated"])
  output = tmp_path / "run"
  real = evaluation.cropped_inputs

  def full_disk(path, *args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

  monkeypatch.setattr(evaluation, "cropped_inputs", full_disk)
  with pytest.raises(UserError, match=r"^stopped by the machine's failure \(OSError: .*No space "
                                      r"left on device.*run the same command again to resume$"):
    run(rgb_classifier, clips, video_dir, output)
  assert JsonLines(output / runs.FAILURES_FILE).records == []
  assert JsonLines(output / runs.STARTED_FILE).records == []  # not taken for crashes either
  monkeypatch.setattr(evaluation, "cropped_inputs", real)
  result = run(rgb_classifier, clips, video_dir, output)
  assert (result["num_videos"], result["num_failed"]) == (2, 0)

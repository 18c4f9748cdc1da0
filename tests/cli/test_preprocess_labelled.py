"""`i3d preprocess` on labelled sets (a folder per class, UCF101 and HMDB51 split files) and
`i3d evaluate --records` on them: the records read back with the public parser, labels.txt, the
class list a test set shares with its training set, and the refusals, each one line."""

import json
from pathlib import Path

import tensorflow as tf

from i3d.inputs import records
from i3d.testing import write_clip
from tests.support.cli import one_line_error, run_cli

FLOW_KEY = records.FLOW_PREFIX + records.ENCODED


def videos(root: Path, *paths: str) -> Path:
  """Tiny generated videos (64x48, 6 frames) at `paths` below `root`."""
  for seed, path in enumerate(paths):
    write_clip(root / path, None, 0.24, (64, 48), seed)
  return root


def stored(folder: Path) -> dict[str, dict]:
  """{example/id: {"index", "label", "path", "frames", "flow"}} of every record in `folder`,
  read with `records.parse_clip` and, for the stream keys, TensorFlow's own proto parser."""
  found = {}
  for shard in sorted(folder.glob("*.tfrecord")):
    for serialized in tf.data.TFRecordDataset(str(shard)):
      parsed = records.parse_clip(serialized, ("rgb",))
      example = tf.train.SequenceExample.FromString(serialized.numpy())
      found[parsed[records.EXAMPLE_ID].numpy().decode()] = {
          "index": int(parsed[records.LABEL_INDEX]),
          "label": parsed[records.LABEL_STRING].numpy().decode(),
          "path": parsed[records.DATA_PATH].numpy().decode(),
          "frames": int(parsed["rgb"].shape[0]),
          "flow": FLOW_KEY in example.feature_lists.feature_list}
  return found


def usage_error(capsys, *argv) -> str:
  """The last line of a run refused for its flags (exit status 2, after the usage)."""
  capsys.readouterr()
  assert run_cli(*argv) == 2
  return capsys.readouterr().err.strip().splitlines()[-1]


def preprocess(*argv) -> int:
  return run_cli("preprocess", *map(str, argv), "--workers", "1", "--quiet")


def test_folder_set_rgb_records_with_labels_txt_resume_and_changed_settings(tmp_path, capsys,
                                                                            checkpoint_dir):
  train = videos(tmp_path / "train", "walk/a.mp4", "run/b.mp4", "run/c d.mp4")
  out = tmp_path / "rec"
  assert preprocess("--dataset", train, "--output_dir", out, "--streams", "rgb") == 0
  assert "3 clips in 1 of 1 shard; 0 clips failed (see failures.jsonl); 2 classes in " \
         "labels.txt" in capsys.readouterr().out
  assert (out / "labels.txt").read_text() == "run\nwalk\n"
  assert stored(out) == {
      path: {"index": ["run", "walk"].index(path.split("/")[0]), "label": path.split("/")[0],
             "path": path, "frames": 6, "flow": False}
      for path in ("walk/a.mp4", "run/b.mp4", "run/c d.mp4")}
  settings = json.loads((out / "records.json").read_text())
  assert settings["records"]["streams"] == ["rgb"] and settings["records"]["flow_backend"] is None
  manifest = [c for line in (out / "manifest.jsonl").read_text().splitlines()
              for c in json.loads(line)["clips"]]
  assert {(c["id"], c["video"], c["label"]) for c in manifest} == {
      ("walk/a.mp4", "walk/a.mp4", "walk"), ("run/b.mp4", "run/b.mp4", "run"),
      ("run/c d.mp4", "run/c d.mp4", "run")}
  shard = next(out.glob("*.tfrecord"))
  written = shard.stat().st_mtime_ns
  assert preprocess("--dataset", train, "--output_dir", out, "--streams", "rgb") == 0
  assert shard.stat().st_mtime_ns == written and not list((out / ".staging").iterdir())
  error = one_line_error(capsys, "preprocess", "--dataset", train, "--output_dir", out,
                         "--workers", "1")
  assert "holds records made with other settings" in error and "streams" in error
  # Features of the records go into a subfolder per class, as their ids name them; a class
  # subfolder that is a link is that clip's failure, and nothing is written through it.
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  (tmp_path / "feats").mkdir()
  (tmp_path / "feats" / "walk").symlink_to(elsewhere)
  assert run_cli("features", "--records", out, "--output_dir", tmp_path / "feats",
                 "--eval_type", "rgb", "--checkpoint_dir", checkpoint_dir, "--endpoint",
                 "Mixed_3b", "--window_frames", "4", "--stride", "4", "--quiet") == 1
  assert sorted(p.relative_to(tmp_path / "feats").as_posix()
                for p in (tmp_path / "feats").glob("*/*_rgb.npy")) == [
      "run/b.mp4_rgb.npy", "run/c d.mp4_rgb.npy"]
  assert json.loads((tmp_path / "feats" / "run" / "b.mp4.json").read_text())["files"] == {
      "rgb": "run/b.mp4_rgb.npy"}
  assert "walk is a link" in capsys.readouterr().err and not list(elsewhere.iterdir())


def test_a_test_set_labelled_with_the_training_class_list(tmp_path, capsys):
  train = videos(tmp_path / "train", "walk/a.mp4", "run/b.mp4", "sit/c.mp4")
  test = videos(tmp_path / "test", "walk/d.mp4", "sit/e.mp4")
  (tmp_path / "train-rec").mkdir()
  (tmp_path / "train-rec" / "labels.txt").write_text("run\nsit\nwalk\n")  # as train's would be
  out = tmp_path / "test-rec"
  assert preprocess("--dataset", test, "--output_dir", out, "--streams", "rgb", "--labels",
                    tmp_path / "train-rec") == 0
  assert (out / "labels.txt").read_text() == "run\nsit\nwalk\n"
  assert {k: v["index"] for k, v in stored(out).items()} == {"walk/d.mp4": 2, "sit/e.mp4": 1}
  (tmp_path / "two.txt").write_text("run\nwalk\n")
  error = one_line_error(capsys, "preprocess", "--dataset", train, "--output_dir",
                         tmp_path / "x", "--labels", tmp_path / "two.txt")
  assert "class 'sit' of the dataset is not in the class list" in error
  # the same folder again, labelled from its own classes: another class list, refused
  error = one_line_error(capsys, "preprocess", "--dataset", test, "--output_dir", out,
                         "--streams", "rgb", "--workers", "1")
  assert "labels_sha256" in error and "num_classes" in error


def test_refusals_of_labelled_sets_are_one_line(tmp_path, capsys):
  root = videos(tmp_path / "set", "walk/a.mp4")
  (root / "run").mkdir()
  error = one_line_error(capsys, "preprocess", "--dataset", root, "--output_dir", tmp_path / "o")
  assert "run: an empty class folder (no video files)" in error
  error = usage_error(capsys, "preprocess", "--dataset", root, "--annotations", "a.csv",
                         "--output_dir", tmp_path / "o")
  assert "give one set of clips, not --annotations and --dataset" in error
  error = usage_error(capsys, "preprocess", "--ucf101_splits", tmp_path, "--output_dir",
                         tmp_path / "o", "--video_dir", root)
  assert "--subset train or test" in error
  (tmp_path / "set.csv").write_text("set/walk/a.mp4,walk,train\n")
  error = one_line_error(capsys, "preprocess", "--dataset", tmp_path / "set.csv", "--split",
                         "test", "--output_dir", tmp_path / "o")
  assert "no row of split 'test' (its splits: train)" in error


def test_ucf101_and_hmdb51_split_files_with_a_bad_row_skipped(tmp_path, capsys):
  ucf = tmp_path / "ucf-splits"
  ucf.mkdir()
  (ucf / "classInd.txt").write_text("1 Archery\n2 YoYo\n")
  (ucf / "testlist01.txt").write_text("YoYo/v_YoYo_g01_c01.avi\n../../etc/passwd\n"
                                      "Archery/v_Archery_g01_c01.avi\n")
  root = videos(tmp_path / "UCF-101", "YoYo/v_YoYo_g01_c01.avi", "Archery/v_Archery_g01_c01.avi")
  out = tmp_path / "ucf-test"
  assert preprocess("--ucf101_splits", ucf, "--video_dir", root, "--subset", "test",
                    "--split_number", 1, "--output_dir", out, "--streams", "rgb") == 0
  err = capsys.readouterr().err
  assert "1 malformed row skipped" in err and "line 2: path '../../etc/passwd' leaves" in err
  assert (out / "labels.txt").read_text() == "Archery\nYoYo\n"
  assert {k: v["index"] for k, v in stored(out).items()} == {
      "YoYo/v_YoYo_g01_c01.avi": 1, "Archery/v_Archery_g01_c01.avi": 0}
  hmdb = tmp_path / "hmdb-splits"
  hmdb.mkdir()
  (hmdb / "wave_test_split2.txt").write_text("w1.avi 1\nw2.avi 2\nw3.avi 0\n")
  (hmdb / "brush_hair_test_split2.txt").write_text("b1.avi 2\nb2.avi 1\n")
  root = videos(tmp_path / "hmdb51", "wave/w1.avi", "wave/w2.avi", "brush_hair/b1.avi")
  out = tmp_path / "hmdb-train"
  assert preprocess("--hmdb51_splits", hmdb, "--video_dir", root, "--subset", "train",
                    "--split_number", 2, "--output_dir", out, "--streams", "rgb") == 0
  assert (out / "labels.txt").read_text() == "brush_hair\nwave\n"
  assert {k: v["index"] for k, v in stored(out).items()} == {"wave/w1.avi": 1}
  failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
  assert [(f["id"], f["reason"].split(":")[0]) for f in failures] == [
      ("brush_hair/b2.avi", "missing")]


def test_evaluate_scores_records_of_a_labelled_set_against_their_labels_txt(
    tmp_path, capsys, checkpoint_dir):
  classes = [f"c{i:03d}" for i in range(400)]
  (tmp_path / "labels400.txt").write_text("\n".join(classes) + "\n")
  test = videos(tmp_path / "test", "c007/a.mp4", "c123/b.mp4")
  out = tmp_path / "rec"
  assert preprocess("--dataset", test, "--output_dir", out, "--streams", "rgb", "--labels",
                    tmp_path / "labels400.txt") == 0
  assert run_cli("evaluate", "--records", out, "--eval_type", "rgb", "--checkpoint_dir",
                 checkpoint_dir, "--output_dir", tmp_path / "eval", "--quiet") in (0, None)
  predictions = [json.loads(line) for line in
                 (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
  assert {(p["id"], p["label"]) for p in predictions} == {("c007/a.mp4", "c007"),
                                                          ("c123/b.mp4", "c123")}
  assert all(set(p["classes"]) <= set(classes) for p in predictions)
  assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["num_videos"] == 2
  small = tmp_path / "rec2"
  assert preprocess("--dataset", test, "--output_dir", small, "--streams", "rgb") == 0
  error = one_line_error(capsys, "evaluate", "--records", small, "--eval_type", "rgb",
                         "--checkpoint_dir", checkpoint_dir, "--output_dir", tmp_path / "e2")
  assert f"{small}/labels.txt lists 2 classes but the checkpoint rgb_imagenet classifies 400" \
         in error



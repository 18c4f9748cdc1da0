"""Reading labelled sets: a folder per class, a CSV with splits, UCF101's and HMDB51's official
split files, and class lists; each checked against the files the test wrote (no decoding)."""

import os
from pathlib import Path

import pytest

from i3d.datasets import labelled
from i3d.errors import UserError
from i3d.model.labels import read_class_list


def touch(root: Path, *paths: str) -> None:
  for path in paths:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(b"video")


def listed(dataset: labelled.LabelledSet) -> list[tuple[str, str, str]]:
  return [(c.video, c.label, c.split) for c in dataset.clips]


def test_folder_set_sorted_classes_regular_files_no_hidden_no_links_out(tmp_path):
  root, outside = tmp_path / "set", tmp_path / "outside"
  touch(root, "walk/2.mp4", "walk/1.mp4", "run/1.mp4", "run/.partial.mp4", ".trash/x.mp4",
        "notes.txt")
  touch(outside, "secret.mp4", "jump/1.mp4")
  (root / "run" / "frames").mkdir()
  os.symlink(outside / "secret.mp4", root / "run" / "leak.mp4")
  os.symlink(outside / "jump", root / "jump")
  os.symlink(root / "walk" / "1.mp4", root / "run" / "inside.mp4")  # a link inside: kept
  dataset = labelled.folder_set(root)
  assert dataset.classes == ("run", "walk")
  assert listed(dataset) == [("run/1.mp4", "run", ""), ("run/inside.mp4", "run", ""),
                             ("walk/1.mp4", "walk", ""), ("walk/2.mp4", "walk", "")]
  assert {(p.text, p.reason.split(";")[0]) for p in dataset.problems} == {
      ("notes.txt", "not in a class folder"), ("jump", "a link out of the dataset folder"),
      ("run/frames", "not a video file"), ("run/leak.mp4", "a link out of the dataset folder")}
  assert dataset.video_dir == str(root)


def test_folder_set_refuses_an_empty_class_and_a_folder_without_classes(tmp_path):
  touch(tmp_path / "set", "walk/1.mp4", "run/.hidden.mp4")
  with pytest.raises(UserError, match=r"set/run: an empty class folder"):
    labelled.folder_set(tmp_path / "set")
  touch(tmp_path / "flat", "1.mp4")
  with pytest.raises(UserError, match="no class folders"):
    labelled.folder_set(tmp_path / "flat")


def test_csv_set_rows_splits_and_paths_that_stay_in_their_root(tmp_path):
  touch(tmp_path / "outside", "x.mp4")
  (tmp_path / "set").mkdir()
  os.symlink(tmp_path / "outside", tmp_path / "set" / "escape")
  csv = tmp_path / "set" / "set.csv"
  csv.write_text("path,label,split\n"
                 "a/1.mp4,walk,train\n"
                 "./b/2.mp4, run ,test\n"
                 "../x.mp4,run,train\n"          # leaves the folder
                 "/etc/passwd,run,train\n"       # absolute
                 "escape/x.mp4,run,train\n"      # through a link out
                 "c/3.mp4\n"                     # one field
                 "a/1.mp4,walk,train\n"          # repeated
                 "\"c/4,5.mp4\",jump,train\n")
  train = labelled.csv_set(csv, split="train")
  assert listed(train) == [("a/1.mp4", "walk", "train"), ("c/4,5.mp4", "jump", "train")]
  assert train.classes == ("jump", "run", "walk")  # every row's labels, whatever the split
  assert train.video_dir == str(tmp_path / "set")
  reasons = {p.line: p.reason for p in train.problems}
  assert sorted(reasons) == [4, 5, 6, 7, 8]
  assert "leaves the video folder" in reasons[4] and "absolute" in reasons[5]
  assert "through a link" in reasons[6] and "2 fields" not in reasons[7]
  assert "listed already (line 2)" in reasons[8]
  assert listed(labelled.csv_set(csv, split="test")) == [("b/2.mp4", "run", "test")]
  elsewhere = labelled.csv_set(csv, str(tmp_path / "videos"))  # no link out below videos/
  assert len(elsewhere.clips) == 4 and elsewhere.video_dir == str(tmp_path / "videos")
  with pytest.raises(UserError, match=r"no row of split 'val' \(its splits: test, train\)"):
    labelled.csv_set(csv, split="val")


def test_csv_set_with_no_usable_row_is_one_error(tmp_path):
  (tmp_path / "bad.csv").write_text("../a.mp4,walk\n")
  with pytest.raises(UserError, match=r"bad.csv: no usable .* \(line 1: path '../a.mp4' leaves"):
    labelled.csv_set(tmp_path / "bad.csv")


def write_ucf101(folder: Path) -> None:
  folder.mkdir()
  (folder / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 Archery\r\n3 YoYo\r\n")
  (folder / "trainlist01.txt").write_text(
      "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nArchery/v_Archery_g08_c02.avi 2\r\n"
      "YoYo/v_YoYo_g09_c01.avi 2\r\n")  # index of another class
  (folder / "testlist01.txt").write_text(
      "YoYo/v_YoYo_g01_c01.avi\nArchery/v_Archery_g01_c01.avi\nDance/v_Dance_g01_c01.avi\n")


def test_ucf101_split_files(tmp_path):
  write_ucf101(tmp_path / "splits")
  train = labelled.ucf101_set(tmp_path / "splits", str(tmp_path / "UCF-101"), 1, "train")
  assert train.classes == ("ApplyEyeMakeup", "Archery", "YoYo")
  assert listed(train) == [("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "ApplyEyeMakeup",
                            "train"), ("Archery/v_Archery_g08_c02.avi", "Archery", "train")]
  assert [p.line for p in train.problems] == [3] and "index 2" in train.problems[0].reason
  test = labelled.ucf101_set(tmp_path / "splits", str(tmp_path / "UCF-101"), 1, "test")
  assert [c.label for c in test.clips] == ["YoYo", "Archery"]
  assert [p.line for p in test.problems] == [3]  # Dance is not in classInd.txt
  with pytest.raises(UserError, match="trainlist02.txt: no such file"):
    labelled.ucf101_set(tmp_path / "splits", str(tmp_path), 2, "train")
  (tmp_path / "splits" / "classInd.txt").write_text("1 A\n3 B\n")
  with pytest.raises(UserError, match="line 2 is not '2 ClassName'"):
    labelled.ucf101_set(tmp_path / "splits", str(tmp_path), 1, "train")


def test_hmdb51_split_files(tmp_path):
  splits = tmp_path / "splits"
  splits.mkdir()
  (splits / "brush_hair_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \nc.avi 0 \n")
  (splits / "wave_test_split1.txt").write_text("d.avi 2\ne.avi 1\nf.avi 7\n../g.avi 1\n")
  (splits / "wave_test_split2.txt").write_text("d.avi 1\n")
  train = labelled.hmdb51_set(splits, str(tmp_path / "hmdb51"), 1, "train")
  assert train.classes == ("brush_hair", "wave")
  assert listed(train) == [("brush_hair/a.avi", "brush_hair", "train"),
                           ("wave/e.avi", "wave", "train")]
  assert [p.line for p in train.problems] == [3, 4]  # tag 7, a path with a slash
  test = labelled.hmdb51_set(splits, str(tmp_path / "hmdb51"), 1, "test")
  assert [c.video for c in test.clips] == ["brush_hair/b.avi", "wave/d.avi"]
  assert labelled.hmdb51_set(splits, str(tmp_path), 2, "train").classes == ("wave",)
  with pytest.raises(UserError, match="no HMDB51 split files <class>_test_split3.txt"):
    labelled.hmdb51_set(splits, str(tmp_path), 3, "test")


def test_a_given_class_list_labels_the_set_and_must_hold_its_classes(tmp_path):
  touch(tmp_path / "set", "walk/1.mp4", "run/1.mp4")
  dataset = labelled.folder_set(tmp_path / "set")
  (tmp_path / "records").mkdir()
  (tmp_path / "records" / "labels.txt").write_text("sit\nwalk\nrun\n")
  classes = labelled.class_list(tmp_path / "records")
  assert labelled.with_classes(dataset, classes, "x").classes == ("sit", "walk", "run")
  with pytest.raises(UserError, match=r"class 'walk' of the dataset is not in the class list "
                                      r"L \(1 classes\)"):
    labelled.with_classes(dataset, ("run",), "L")
  with pytest.raises(UserError, match="a folder without labels.txt"):
    labelled.class_list(tmp_path / "set")


@pytest.mark.parametrize("text, problem", [
    ("a\n\nb\n", "line 2: an empty class name"), ("a\nb \n", "line 2: class name 'b ' starts"),
    ("a\nb\na\n", "line 3 repeats 'a' (line 1)"), ("a\tb\n", "line 1: class name 'a\\\\tb' holds")])
def test_class_list_files_are_checked(tmp_path, text, problem):
  (tmp_path / "labels.txt").write_text(text)
  with pytest.raises(UserError, match=problem.replace("(", r"\(").replace(")", r"\)")):
    read_class_list(tmp_path / "labels.txt")

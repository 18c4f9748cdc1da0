"""Labelled sets of whole videos: what they hold (clips with labels and splits), their class list,
and the rows that could not be used.

Every set is read into a `LabelledSet`: `Clip`s made by `video_clip` (a path below the video
folder, forward slashes, and a label), the class list (label index i is `classes[i]`) and the
`Problem`s of rows or files that were skipped. Paths never leave the video folder, also through
links; hidden files are skipped. A set whose rows are all unusable, an empty class folder or a
class list that lacks a class of the set is a one-line `UserError`.

- `folder_set(DIR)`: `DIR/<class>/<video>`; classes are the sorted class folder names.
- `csv_set(FILE.csv)`: rows `path,label[,split]` (an optional header `path,label[,split]`), paths
  below the CSV's folder or the given video folder; classes are the sorted labels of every row,
  whatever the split, so the train and test sets of one file share them.
- `ucf101_set`: `classInd.txt` (`1 ApplyEyeMakeup`, 1-based) and `trainlist0N.txt`
  (`ApplyEyeMakeup/v_..._g08_c01.avi 1`) or `testlist0N.txt` (`ApplyEyeMakeup/v_....avi`).
- `hmdb51_set`: `<class>_test_splitN.txt`, lines `video.avi TAG` (1 train, 2 test, 0 unused);
  videos at `<class>/video.avi`; classes are the sorted class names of the files.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import posixpath
import re
from pathlib import Path

from i3d._util import storage
from i3d._util.files import check_regular
from i3d.errors import UserError
from i3d.kinetics.annotations import Clip, Problem, video_clip
from i3d.model.labels import CLASS_LIST_FILE, class_name_problem, read_class_list

SUBSETS = ("train", "test")
# Split files and CSVs are read whole: at most this many bytes.
MAX_LIST_BYTES = 256 << 20
_HMDB_FILE = re.compile(r"^(?P<name>.+)_test_split(?P<number>\d+)\.txt$")
_HMDB_TAGS = {"train": "1", "test": "2"}


@dataclasses.dataclass(frozen=True)
class LabelledSet:
  """The clips of a set (`video_clip`s, paths below `video_dir`), its class list and the rows or
  files skipped (`Problem`: line 0 when the problem is a file, named by `text`)."""
  clips: list[Clip]
  classes: tuple[str, ...]
  problems: list[Problem]
  video_dir: str


class _RowError(ValueError):
  """Why one row or file of a set is unusable (becomes a `Problem`)."""


def _inside(path: str | Path, root: Path) -> bool:
  """Whether `path`, links resolved, is `root` or below it (`root` resolved)."""
  real = Path(os.path.realpath(path))
  return real == root or root in real.parents


def folder_set(root: str | Path) -> LabelledSet:
  """The set of `root/<class>/<video>`: classes are the sorted names of the class folders, videos
  the regular files in them (hidden ones and links out of `root` are skipped)."""
  root = Path(root)
  if not root.is_dir():
    raise UserError(f"{root}: no such folder; --dataset takes a folder of class folders "
                    f"(DIR/<class>/<video>) or a CSV file of path,label[,split] rows")
  real = Path(os.path.realpath(root))
  clips: list[Clip] = []
  classes: list[str] = []
  problems: list[Problem] = []
  for entry in _visible(root, real, problems):
    if not entry.is_dir():
      problems.append(Problem(0, "not in a class folder; skipped", entry.name))
      continue
    if class_name_problem(entry.name):
      raise UserError(f"{entry}: {class_name_problem(entry.name)}; rename the class folder")
    videos = []
    for video in _visible(entry, real, problems, f"{entry.name}/"):
      if video.is_file():
        videos.append(video_clip(f"{entry.name}/{video.name}", entry.name))
      else:
        problems.append(Problem(0, "not a video file; skipped", f"{entry.name}/{video.name}"))
    if not videos:
      raise UserError(f"{entry}: an empty class folder (no video files); add its videos or "
                      f"remove the folder")
    classes.append(entry.name)
    clips += videos
  if not classes:
    raise UserError(f"{root}: no class folders; --dataset DIR takes DIR/<class>/<video>")
  return LabelledSet(clips, tuple(classes), problems, str(root))


def _visible(folder: Path, real_root: Path, problems: list[Problem],
             prefix: str = "") -> list[Path]:
  """The entries of `folder` by name, without hidden ones and links out of the root."""
  entries = []
  for path in sorted(folder.iterdir()):
    if path.name.startswith("."):
      continue
    if not _inside(path, real_root):
      problems.append(Problem(0, "a link out of the dataset folder; skipped",
                              prefix + path.name))
    else:
      entries.append(path)
  return entries


def _read_text(path: Path, what: str) -> str:
  """The UTF-8 text of a small list file (`what` names it in errors)."""
  check_regular(path, f"{what} {path}")
  if path.stat().st_size > MAX_LIST_BYTES:
    raise UserError(f"{what} {path}: larger than {MAX_LIST_BYTES} bytes")
  try:
    return path.read_bytes().decode("utf-8-sig")
  except UnicodeDecodeError:
    raise UserError(f"{what} {path}: not UTF-8 text; save it as UTF-8") from None
  except OSError as e:
    raise UserError(f"{what} {path}: cannot read ({e.strerror})") from None


def video_path(text: str, root: str) -> str:
  """`text`, a video's path below the folder `root`, normalised (forward slashes); a path that is
  empty, absolute or leaves `root` (by `..` or, locally, through a link) is a `_RowError`."""
  if not text or "\x00" in text or "\\" in text:
    raise _RowError(f"path {text!r} is empty or holds a backslash or NUL; use forward slashes")
  if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
    raise _RowError(f"path {text!r} is absolute; give it relative to the video folder")
  path = posixpath.normpath(text)
  if path == "." or path == ".." or path.startswith("../"):
    raise _RowError(f"path {text!r} leaves the video folder {root}")
  if not storage.is_remote(root) and not _inside(Path(root, path), Path(os.path.realpath(root))):
    raise _RowError(f"path {text!r} leads out of the video folder {root} through a link")
  return path


def csv_set(path: str | Path, video_dir: str | None = None,
            split: str | None = None) -> LabelledSet:
  """The set of a CSV file of `path,label[,split]` rows, paths below `video_dir` (default: the
  CSV's folder); with `split`, only its rows (the class list is still every row's)."""
  path = Path(path)
  root = video_dir if video_dir is not None else str(path.parent)
  text = _read_text(path, "dataset CSV")
  clips, problems = [], []
  seen: dict[str, int] = {}
  reader = csv.reader(text.splitlines(keepends=True))
  for fields in reader:
    line = reader.line_num
    fields = [f.strip() for f in fields]
    if not any(fields) or (line == 1 and [f.lower() for f in fields[:2]] == ["path", "label"]):
      continue
    try:
      if len(fields) not in (2, 3):
        raise _RowError(f"{len(fields)} fields, expected path,label or path,label,split")
      video = video_path(fields[0], root)
      if video in seen:
        raise _RowError(f"{video} is listed already (line {seen[video]})")
      if problem := class_name_problem(fields[1]):  # the row's class name
        raise _RowError(problem)
      clips.append(video_clip(video, fields[1], fields[2] if len(fields) == 3 else ""))
      seen[video] = line
    except _RowError as e:
      problems.append(Problem(line, str(e), ",".join(fields)))
  if not clips:
    first = f" (line {problems[0].line}: {problems[0].reason})" if problems else ""
    raise UserError(f"{path}: no usable path,label[,split] row{first}")
  classes = tuple(sorted({c.label for c in clips if c.label is not None}))
  if split is not None:
    chosen = [c for c in clips if c.split == split]
    if not chosen:
      splits = sorted({c.split for c in clips if c.split})
      raise UserError(f"{path}: no row of split {split!r} (its splits: "
                      f"{', '.join(splits) or 'none'}); pick one with --split")
    clips = chosen
  return LabelledSet(clips, classes, problems, root)


def _check_subset(subset: str, number: int, most: int) -> None:
  if subset not in SUBSETS:
    raise UserError(f"unknown subset {subset!r}; choose train or test")
  if not 1 <= number <= most:
    raise UserError(f"split number {number} does not exist; choose 1 to {most}")


def ucf101_set(splits_dir: str | Path, video_dir: str, number: int = 1,
               subset: str = "train") -> LabelledSet:
  """The `subset` (train or test) of UCF101's split `number` (1-3), from the official
  `classInd.txt` and `trainlist0N.txt` / `testlist0N.txt` in `splits_dir`; videos below
  `video_dir` (the `UCF-101` folder)."""
  _check_subset(subset, number, 3)
  splits_dir = Path(splits_dir)
  classes = _class_index(splits_dir / "classInd.txt")
  listing = splits_dir / f"{subset}list{number:02d}.txt"
  clips, problems = [], []
  for line, text in enumerate(_read_text(listing, "UCF101 split file").splitlines(), 1):
    fields = text.split()
    if not fields:
      continue
    try:
      video = video_path(fields[0], video_dir)
      label = video.split("/")[0] if "/" in video else None
      if label not in classes or len(fields) > 2:
        raise _RowError("expected Class/video.avi [index] of a class in classInd.txt")
      if len(fields) == 2 and fields[1] != str(classes.index(label) + 1):
        raise _RowError(f"index {fields[1]} is not that of {label} in classInd.txt "
                        f"({classes.index(label) + 1})")
      clips.append(video_clip(video, label, subset))
    except _RowError as e:
      problems.append(Problem(line, str(e), text))
  return _usable(LabelledSet(clips, classes, problems, video_dir), listing)


def _class_index(path: Path) -> tuple[str, ...]:
  """The classes of UCF101's `classInd.txt` (`1 ApplyEyeMakeup`, indices 1, 2, ... in order)."""
  classes: list[str] = []
  for line, text in enumerate(_read_text(path, "UCF101 class index").splitlines(), 1):
    fields = text.split(maxsplit=1)
    if not fields:
      continue
    if (len(fields) != 2 or fields[0] != str(len(classes) + 1) or class_name_problem(fields[1])
        or fields[1] in classes):
      raise UserError(f"{path}: line {line} is not '{len(classes) + 1} ClassName' (a new class "
                      f"numbered after the one before); is it UCF101's classInd.txt?")
    classes.append(fields[1])
  if not classes:
    raise UserError(f"{path}: no classes; is it UCF101's classInd.txt?")
  return tuple(classes)


def hmdb51_set(splits_dir: str | Path, video_dir: str, number: int = 1,
               subset: str = "train") -> LabelledSet:
  """The `subset` (train: tag 1, test: tag 2) of HMDB51's split `number` (1-3), from the official
  `<class>_test_split<number>.txt` files in `splits_dir`; videos at `video_dir/<class>/<video>`."""
  _check_subset(subset, number, 3)
  splits_dir = Path(splits_dir)
  if not splits_dir.is_dir():
    raise UserError(f"{splits_dir}: no such folder of HMDB51 split files")
  files = {m["name"]: splits_dir / name for name in sorted(os.listdir(splits_dir))
           if (m := _HMDB_FILE.match(name)) and int(m["number"]) == number
           and not name.startswith(".")}
  if not files:
    raise UserError(f"{splits_dir}: no HMDB51 split files <class>_test_split{number}.txt")
  clips, problems = [], []
  for label, listing in sorted(files.items()):
    if class_name_problem(label):
      raise UserError(f"{listing}: {class_name_problem(label)}")
    for line, text in enumerate(_read_text(listing, "HMDB51 split file").splitlines(), 1):
      fields = text.split()
      if not fields:
        continue
      if len(fields) != 2 or fields[1] not in ("0", "1", "2") or "/" in fields[0]:
        problems.append(Problem(line, f"{listing.name}: expected 'video.avi TAG' with TAG 0, 1 "
                                      f"or 2", text))
      elif fields[1] == _HMDB_TAGS[subset]:
        try:
          clips.append(video_clip(video_path(f"{label}/{fields[0]}", video_dir), label, subset))
        except _RowError as e:
          problems.append(Problem(line, f"{listing.name}: {e}", text))
  return _usable(LabelledSet(clips, tuple(sorted(files)), problems, video_dir), splits_dir)


def _usable(dataset: LabelledSet, where: Path) -> LabelledSet:
  """`dataset`, unless it holds no clip: then a `UserError` naming `where`."""
  if not dataset.clips:
    first = (f" (line {dataset.problems[0].line}: {dataset.problems[0].reason})"
             if dataset.problems else "")
    raise UserError(f"{where}: no video of this split and subset{first}")
  return dataset


def class_list(path: str | Path) -> tuple[str, ...]:
  """The class list of `--labels`: a class list file, or a records folder's `labels.txt`."""
  path = Path(path)
  if path.is_dir():
    if not (path / CLASS_LIST_FILE).exists():
      raise UserError(f"{path}: a folder without {CLASS_LIST_FILE}; give the records folder "
                      f"of the training set (`i3d preprocess` wrote its {CLASS_LIST_FILE}) or "
                      f"a file")
    path = path / CLASS_LIST_FILE
  return read_class_list(path)


def with_classes(dataset: LabelledSet, classes: tuple[str, ...], where: str) -> LabelledSet:
  """`dataset` labelled from the class list `classes` (read from `where`): a class of the set
  missing from it is a `UserError` naming the class."""
  missing = [c for c in dataset.classes if c not in classes]
  if missing:
    more = f"; {len(missing) - 1} more missing" if len(missing) > 1 else ""
    raise UserError(f"class {missing[0]!r} of the dataset is not in the class list {where} "
                    f"({len(classes)} classes{more}); records must use the class list of the "
                    f"set the model is trained on")
  return dataclasses.replace(dataset, classes=classes)

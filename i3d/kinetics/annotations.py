"""Kinetics-400/600/700 annotations: parsing, subsets and an index of a local video directory.

Everything here works on plain `Clip` records and never touches the network; downloads live in
`i3d.kinetics.download`.
"""

import collections
import csv
import dataclasses
import hashlib
import json
import posixpath
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from i3d._util import storage
from i3d._util.files import atomic_write
from i3d.errors import UserError
from i3d.inputs.decode import is_readable
from i3d.model.labels import class_index, load_label_map

VERSIONS = (400, 600, 700)
SPLITS = ("train", "validation", "test")
# Spellings of the splits in the official CSV ("val") and JSON ("validate") files.
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "validation",
                  "valid": "validation", "validate": "validation", "validation": "validation",
                  "test": "test", "testing": "test"}
_REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end", "split")
_FILENAME = re.compile(r"^(?P<id>.+)_(?P<start>\d{6})_(?P<end>\d{6})\.mp4$")
# YouTube ids are 11 characters of [A-Za-z0-9_-]; real files carry a few longer or odd ones, so
# any name is taken that cannot leave its folder: no separator, NUL or leading dot ("..", hidden
# files). Labels become folder names and follow the same rule.
_UNSAFE_NAME = re.compile(r"[/\\\x00]|^\.")
_MAX_NAME = 200


@dataclasses.dataclass(frozen=True)
class Clip:
  """One annotated 10 s window of a YouTube video; `label` is None in the test split.

  A whole video of another labelled set (`i3d.datasets`) has `video`, its path below the video
  folder with forward slashes; its `youtube_id` is that path too (its id wherever clips are keyed)
  and its times are 0 (see `video_clip`).
  """
  youtube_id: str
  time_start: int
  time_end: int
  split: str
  label: str | None = None
  is_cc: bool | None = None
  video: str | None = None

  @property
  def filename(self) -> str:
    """The name Kinetics tools and the CVDF mirror use: `{id}_{start:06d}_{end:06d}.mp4` (a
    dataset video's path below its folder)."""
    if self.video is not None:
      return self.video
    return f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}.mp4"

  @property
  def relpath(self) -> PurePosixPath:
    """Where the clip lives under a video directory: `split/label/filename`."""
    return PurePosixPath(self.split, *([self.label] if self.label else []), self.filename)


def video_clip(path: str, label: str, split: str = "") -> Clip:
  """The `Clip` of a whole labelled video at `path` (below its video folder, forward slashes)."""
  return Clip(path, 0, 0, split, label, video=path)


@dataclasses.dataclass(frozen=True)
class Problem:
  """A malformed annotation row, reported instead of silently dropped."""
  line: int
  reason: str
  text: str


@dataclasses.dataclass(frozen=True)
class Annotations:
  """The clips of one annotation file and the rows that could not be used."""
  clips: list[Clip]
  problems: list[Problem]


@dataclasses.dataclass(frozen=True)
class IndexRow:
  """Whether an annotated clip is in a video directory: "found", "missing" or "unreadable" (or
  in records: the path of its shard, a string)."""
  clip: Clip
  status: str
  path: Path | str | None


class _RowError(ValueError):
  """Why one annotation row is unusable (becomes a `Problem`)."""


def normalize_version(version: int | str) -> int:
  """400, 600 or 700 from spellings such as "600" or "700-2020"; anything else is an error."""
  text = str(version).strip().lower().removeprefix("kinetics").strip("-_ ")
  text = re.sub(r"[-_]2020$", "", text)
  if text.isdigit() and int(text) in VERSIONS:
    return int(text)
  raise UserError(f"unknown Kinetics version {version!r}; use one of 400, 600, 700 (700-2020)")


def normalize_split(split: str) -> str:
  """"train", "validation" or "test" from the spellings official files use ("val", "validate")."""
  try:
    return _SPLIT_ALIASES[split.strip().lower()]
  except KeyError:
    raise UserError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}") from None


def read_annotations(path: str | Path, version: int | str | None = None) -> Annotations:
  """Clips of an official CSV or ActivityNet-style JSON file; bad rows become `Problem`s.

  With `version`, labels outside that version's label map are reported as problems too.
  """
  path = Path(path)
  text = _read_text(path)
  labels = frozenset(load_label_map(normalize_version(version))) if version is not None else None
  rows = _json_rows(text, path) if path.suffix.lower() == ".json" else _csv_rows(text, path)
  return _collect(rows, labels)


def _collect(rows: Iterable[tuple[int, dict, str]], labels: frozenset[str] | None) -> Annotations:
  """Builds clips from (line, fields, raw text) rows, recording problems and duplicates."""
  clips, problems = [], []
  seen: dict[tuple[str, str], int] = {}
  for line, fields, raw in rows:
    try:
      clip = _clip(fields, labels)
      if (clip.split, clip.filename) in seen:
        raise _RowError(f"duplicate of line {seen[clip.split, clip.filename]}")
    except _RowError as e:
      problems.append(Problem(line, str(e), raw))
      continue
    seen[clip.split, clip.filename] = line
    clips.append(clip)
  return Annotations(clips, problems)


def _csv_rows(text: str, path: Path) -> Iterable[tuple[int, dict, str]]:
  """(line number, fields, raw text) of each CSV record; quoted names keep commas and quotes."""
  lines = text.splitlines(keepends=True)
  reader = csv.reader(lines)
  header = [h.strip() for h in next(reader, [])]
  missing = [c for c in _REQUIRED_COLUMNS if c not in header]
  if missing:
    raise UserError(f"{path}: not a Kinetics annotation CSV (no column {', '.join(missing)}); "
                    f"expected a header like label,youtube_id,time_start,time_end,split")
  start = reader.line_num + 1
  for record in reader:
    raw = "".join(lines[start - 1:reader.line_num]).rstrip("\r\n")
    if any(cell.strip() for cell in record):
      if len(record) != len(header):
        yield start, {"_error": f"{len(record)} fields, expected {len(header)}"}, raw
      else:
        yield start, dict(zip(header, record)), raw
    start = reader.line_num + 1


def _read_text(path: Path) -> str:
  """The UTF-8 text of an annotation file (a byte-order mark is dropped); one-line errors."""
  try:
    data = path.read_bytes()
  except FileNotFoundError:
    raise UserError(f"annotations file {path} not found; pass the official Kinetics CSV or JSON "
                    f"(or leave --annotations out to download it)") from None
  except OSError as e:
    raise UserError(f"annotations file {path}: cannot read it ({e.strerror}); pass the "
                    f"official Kinetics CSV or JSON file") from None
  try:
    return data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = data.count(b"\n", 0, e.start) + 1
    raise UserError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[e.start]:02x}); "
                    f"save the file as UTF-8") from None


def _json_rows(text: str, path: Path) -> Iterable[tuple[int, dict, str]]:
  """Rows of an ActivityNet-style JSON file `{id: {annotations, duration, subset, url}}`.

  The top-level object is scanned entry by entry, so each row knows its line in linear time
  and repeated ids are reported rather than silently merged.
  """
  decoder = json.JSONDecoder()
  whitespace = re.compile(r"\s*")
  line, counted = 1, 0

  def skip(position: int) -> int:
    return whitespace.match(text, position).end()  # type: ignore[union-attr]

  def expect(position: int, char: str, what: str) -> int:
    position = skip(position)
    if text[position:position + 1] != char:
      raise json.JSONDecodeError(f"expected {what}", text, position)
    return position + 1

  try:
    position = skip(0)
    if text[position:position + 1] != "{":
      raise UserError(f"{path}: expected a JSON object mapping YouTube ids to annotations")
    position = skip(position + 1)
    if text[position:position + 1] == "}":
      return
    while True:
      start = position = expect(position, '"', "a quoted YouTube id")
      key, position = json.decoder.scanstring(text, position)  # type: ignore[attr-defined]
      entry, position = decoder.raw_decode(text, skip(expect(position, ":", "':'")))
      line += text.count("\n", counted, start)
      counted = start
      yield line, _json_fields(key, entry), json.dumps({key: entry})
      position = skip(position)
      if text[position:position + 1] == "}":
        break
      position = expect(position, ",", "',' or '}'")
    if skip(position + 1) != len(text):
      raise json.JSONDecodeError("extra data after the object", text, skip(position + 1))
  except json.JSONDecodeError as e:
    raise UserError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None


def _json_fields(key: str, entry: object) -> dict:
  """CSV-style fields of one JSON entry; a wrongly shaped entry gives an `_error` field."""
  if not isinstance(entry, dict):
    return {"_error": "entry is not an object"}
  annotation = entry.get("annotations") or {}
  if not isinstance(annotation, dict):
    return {"_error": f"annotations {annotation!r} is not an object"}
  segment = annotation.get("segment") or [None, None]
  if not isinstance(segment, list) or len(segment) != 2:
    return {"_error": f"segment {segment!r} is not [start, end]"}
  fields = {"youtube_id": key, "time_start": segment[0], "time_end": segment[1],
            "split": entry.get("subset"), "label": annotation.get("label")}
  wrong = [k for k, v in fields.items() if isinstance(v, (dict, list))]
  if wrong:
    return {"_error": f"{wrong[0]} {fields[wrong[0]]!r} is not a single value"}
  return fields


def _clip(fields: dict, labels: frozenset[str] | None) -> Clip:
  """A validated `Clip` from one row's fields, or `_RowError` saying what is wrong."""
  if "_error" in fields:
    raise _RowError(fields["_error"])
  values = {k: str(v).strip() if v is not None else "" for k, v in fields.items()}
  for column in _REQUIRED_COLUMNS:
    if not values.get(column):
      raise _RowError(f"missing {column}")
  split = _SPLIT_ALIASES.get(values["split"].lower())
  if split is None:
    raise _RowError(f"unknown split {values['split']!r}")
  label = values.get("label") or None
  if label is None and split != "test":
    raise _RowError("missing label")
  _check_name("youtube_id", values["youtube_id"])
  if label is not None:
    _check_name("label", label)
  if label is not None and labels is not None and label not in labels:
    raise _RowError(f"label {label!r} is not a class of this Kinetics version")
  start, end = _seconds(values["time_start"]), _seconds(values["time_end"])
  if end <= start:
    raise _RowError(f"time_end {end} <= time_start {start}")
  return Clip(values["youtube_id"], start, end, split, label, _flag(values.get("is_cc", "")))


def _check_name(column: str, name: str) -> None:
  """A `_RowError` unless `name` is safe as a file or folder name (see `_UNSAFE_NAME`)."""
  if _UNSAFE_NAME.search(name) or len(name) > _MAX_NAME:
    raise _RowError(f"{column} {name!r} is not a safe file name (no /, \\, NUL or leading "
                    f"dot; at most {_MAX_NAME} characters)")


def _seconds(value: str) -> int:
  """A whole, non-negative number of seconds ("38" or "38.0")."""
  try:
    seconds = float(value)
  except ValueError:
    raise _RowError(f"time {value!r} is not a number") from None
  if not seconds.is_integer() or seconds < 0:
    raise _RowError(f"time {value!r} is not a whole non-negative number of seconds")
  return int(seconds)


def _flag(value: str) -> bool | None:
  """The optional is_cc column: "1"/"0" (or true/false), None when absent."""
  flags = {"": None, "1": True, "true": True, "1.0": True, "0": False, "false": False, "0.0": False}
  if value.lower() not in flags:
    raise _RowError(f"is_cc {value!r} is not 0 or 1")
  return flags[value.lower()]


def usable(parsed: Annotations, path: str | Path) -> list[Clip]:
  """The clips of a parsed file; a `UserError` when it had rows but none was usable."""
  if parsed.problems and not parsed.clips:
    first = parsed.problems[0]
    raise UserError(f"{path}: none of its {len(parsed.problems)} rows is usable (line "
                    f"{first.line}: {first.reason}); is it a Kinetics annotation file?")
  return parsed.clips


def clip_list(clips: Sequence[Clip]) -> dict:
  """How a run's settings record its clip list: their number and a digest of their names and
  labels (a rerun with another list is refused)."""
  listing = "\n".join(f"{c.filename}\t{c.label}" for c in clips).encode()
  return {"num_clips": len(clips), "clips_sha256": hashlib.sha256(listing).hexdigest()}


def write_annotations(clips: Iterable[Clip], path: str | Path) -> Path:
  """Writes clips as an official-style CSV (readable by `read_annotations`), atomically."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with atomic_write(path) as f:
    writer = csv.writer(f)
    writer.writerow(["label", "youtube_id", "time_start", "time_end", "split", "is_cc"])
    for c in clips:
      is_cc = "" if c.is_cc is None else int(c.is_cc)
      writer.writerow([c.label or "", c.youtube_id, c.time_start, c.time_end, c.split, is_cc])
  return path


def check_classes(classes: Iterable[str], version: int | str) -> list[str]:
  """The class names, each checked against the version's label map (errors suggest close names)."""
  version = normalize_version(version)
  return [load_label_map(version)[class_index(name, version)] for name in classes]


def select(clips: Sequence[Clip], *, splits: Iterable[str] | None = None,
           classes: Iterable[str] | None = None, max_samples: int | None = None,
           shuffle: bool = False, seed: int | None = None,
           present: Iterable[str] = ()) -> list[Clip]:
  """A subset with FiftyOne zoo-loader semantics.

  Keeps clips of the given splits that have any of `classes`; per split at most `max_samples`,
  in file order or, with `shuffle`, in an order fixed by `seed`. Clips whose filenames are in
  `present` (already on disk) are taken before any others, so a subset fetches as little as
  possible.
  """
  if max_samples is not None and max_samples < 0:
    raise UserError(f"max_samples must be 0 or more, got {max_samples}")
  wanted = set(classes) if classes is not None else None
  split_order = ([normalize_split(s) for s in splits] if splits is not None
                 else list(dict.fromkeys(c.split for c in clips)))
  present = set(present)
  chosen = []
  for split in dict.fromkeys(split_order):
    pool = [c for c in clips if c.split == split and (wanted is None or c.label in wanted)]
    if shuffle:
      random.Random(None if seed is None else f"{seed}/{split}").shuffle(pool)
    pool.sort(key=lambda c: c.filename not in present)  # stable: order kept within each group
    chosen.extend(pool[:max_samples])
  return chosen


def local_clips(video_dir: str | Path) -> dict[str, Path]:
  """Finished clip files anywhere under `video_dir`, by filename (partial files never count)."""
  video_dir = Path(video_dir)
  if not video_dir.is_dir():
    return {}
  return {p.name: p for p in sorted(video_dir.rglob("*.mp4")) if _FILENAME.match(p.name)
          and not any(part.startswith(".") for part in p.relative_to(video_dir).parts)}


def video_files(video_dir: str | Path) -> dict[str, str]:
  """Clip files anywhere under `video_dir`, local (`local_clips`) or on any filesystem `storage`
  reaches (gs://...), by file name."""
  if not storage.is_remote(video_dir):
    return {name: str(path) for name, path in local_clips(video_dir).items()}
  found: dict[str, str] = {}
  for path in sorted(storage.walk_files(str(video_dir))):
    relative = posixpath.relpath(path, video_dir).split("/")
    if parse_filename(path) and not any(part.startswith(".") for part in relative):
      found.setdefault(posixpath.basename(path), path)
  return found


def parse_filename(name: str) -> tuple[str, int, int] | None:
  """(youtube_id, time_start, time_end) of a Kinetics clip filename, or None."""
  match = _FILENAME.match(PurePosixPath(name).name)
  return (match["id"], int(match["start"]), int(match["end"])) if match else None


def index_videos(clips: Iterable[Clip], video_dir: str | Path,
                 check_readable: bool = True) -> list[IndexRow]:
  """Joins annotations with a video directory: each clip found, missing or unreadable."""
  files = local_clips(video_dir)
  rows = []
  for clip in clips:
    path = files.get(clip.filename)
    status = ("missing" if path is None else
              "unreadable" if check_readable and not is_readable(path) else "found")
    rows.append(IndexRow(clip, status, path))
  return rows


def class_counts(rows: Iterable[IndexRow]) -> dict[str, collections.Counter]:
  """Per class label, how many clips are found, missing and unreadable."""
  counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  for row in rows:
    counts[row.clip.label or "(unlabeled)"][row.status] += 1
  return dict(sorted(counts.items()))

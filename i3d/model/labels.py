"""Kinetics label maps: class names in the order the released checkpoints' logits use."""

import difflib
import functools
from collections.abc import Sequence
from pathlib import Path

from i3d._util import env
from i3d._util.files import check_regular
from i3d.errors import UserError

LABEL_MAP_FILES = {400: "label_map.txt", 600: "label_map_600.txt", 700: "label_map_700.txt"}


def load_label_map(version: int | str = 400) -> tuple[str, ...]:
  """Class names of Kinetics-`version` (400, 600 or 700), or of a label-map file path (read
  again when the file changes)."""
  path = _label_map_path(version)
  try:
    stat = path.stat()
  except FileNotFoundError:
    stat = None
  return _read_label_map(path, stat and (stat.st_mtime_ns, stat.st_size))


@functools.cache
def _read_label_map(path: Path, version: object) -> tuple[str, ...]:
  """The names in `path`; `version` (its modification time and size) keys the cache."""
  try:
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
  except FileNotFoundError:
    raise UserError(f"label map {path} not found; unset $I3D_DATA_DIR to use the copy in the "
                    f"package (or point it at a folder holding {path.name}), or pass an "
                    f"existing file with one class name per line") from None
  return tuple(n for n in names if n)


def _label_map_path(version: int | str) -> Path:
  if isinstance(version, int) or str(version).isdigit():
    if int(version) not in LABEL_MAP_FILES:
      raise UserError(f"unknown Kinetics version {version!r}; expected one of "
                      f"{sorted(LABEL_MAP_FILES)}")
    return env.data_dir() / LABEL_MAP_FILES[int(version)]
  path = Path(version)
  return path if path.is_absolute() or path.exists() else env.data_dir() / path


def class_index(name: str, version: int | str = 400) -> int:
  """Index of class `name`; an unknown name is an error listing the closest names."""
  names = load_label_map(version)
  try:
    return names.index(name)
  except ValueError:
    raise UserError(f"unknown class {name!r} for Kinetics-{version}"
                    f"{did_you_mean(name, names)}") from None


def did_you_mean(name: str, names: Sequence[str]) -> str:
  """`; did you mean 'a', 'b'?` listing the class names closest to `name`, or `` if none is."""
  close = difflib.get_close_matches(name, names, n=3, cutoff=0.75)
  return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def class_name(index: int, version: int | str = 400) -> str:
  """Name of class number `index`."""
  names = load_label_map(version)
  if not 0 <= index < len(names):
    raise UserError(f"class index {index} out of range for a {len(names)}-class label map")
  return names[index]


# The class list written beside records of a set other than Kinetics (line i names class i).
CLASS_LIST_FILE = "labels.txt"
# A class list file (`labels.txt` beside records, `--labels`): at most this many bytes.
MAX_CLASS_LIST_BYTES = 1 << 20
_BAD_NAME_CHARACTERS = frozenset(map(chr, range(32))) | {"\x7f"}


def class_name_problem(name: str) -> str | None:
  """Why `name` cannot be a class in a class list file (one name per line), or None."""
  if not name:
    return "an empty class name"
  if name != name.strip():
    return f"class name {name!r} starts or ends with white space"
  if any(c in _BAD_NAME_CHARACTERS for c in name):
    return f"class name {name!r} holds a control character (a line break, tab, NUL, ...)"
  return None


def read_class_list(path: str | Path) -> tuple[str, ...]:
  """The class names of a class list file, line i naming class i (`write`: `class_list_text`).

  The file must be a regular UTF-8 file of at most `MAX_CLASS_LIST_BYTES`, one distinct class
  name per line (a last line break is optional); anything else is a one-line `UserError`.
  """
  path = Path(path)
  check_regular(path, f"class list {path}")
  if path.stat().st_size > MAX_CLASS_LIST_BYTES:
    raise UserError(f"class list {path}: larger than {MAX_CLASS_LIST_BYTES} bytes; give a file "
                    f"with one class name per line")
  try:
    return parse_class_list(path.read_bytes(), str(path))
  except OSError as e:
    raise UserError(f"class list {path}: cannot read ({e.strerror})") from None


def parse_class_list(data: bytes, path: str) -> tuple[str, ...]:
  """The class names in the bytes `data` of the class list file `path` (see `read_class_list`)."""
  if len(data) > MAX_CLASS_LIST_BYTES:
    raise UserError(f"class list {path}: larger than {MAX_CLASS_LIST_BYTES} bytes")
  try:
    text = data.decode("utf-8-sig").replace("\r\n", "\n")
  except UnicodeDecodeError:
    raise UserError(f"class list {path}: not UTF-8 text; save it as UTF-8, one class name per "
                    f"line") from None
  lines = text.removesuffix("\n").split("\n")
  seen: dict[str, int] = {}
  for number, name in enumerate(lines, 1):
    problem = class_name_problem(name)
    if problem:
      raise UserError(f"class list {path}: line {number}: {problem}; give one class name per "
                      f"line")
    if name in seen:
      raise UserError(f"class list {path}: line {number} repeats {name!r} (line {seen[name]}); "
                      f"each class once")
    seen[name] = number
  return tuple(lines)


def class_list_text(names: Sequence[str]) -> str:
  """The text of a class list file of `names` (`read_class_list` reads it back)."""
  return "".join(f"{n}\n" for n in names)

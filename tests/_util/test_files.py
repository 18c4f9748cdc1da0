"""Atomic writes: the old content or the new, never half a file, no temporary left behind."""

import errno
import json
import os

import pytest

from i3d._util import files
from i3d._util.files import atomic_write, write_json


def test_write_json_replaces_the_file_whole(tmp_path):
  path = tmp_path / "m.json"
  write_json(path, {"a": 1})
  write_json(path, {"a": [1, 2]})
  assert json.loads(path.read_text()) == {"a": [1, 2]}
  assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_failed_write_keeps_the_old_content(tmp_path):
  path = tmp_path / "data.bin"
  path.write_bytes(b"old")
  with pytest.raises(RuntimeError):
    with atomic_write(path, "wb") as f:
      f.write(b"new, half")
      raise RuntimeError("disk full")
  assert path.read_bytes() == b"old"
  assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


@pytest.mark.parametrize("exchange", [True, False], ids=["exchanged", "renamed-twice"])
def test_a_folder_is_replaced_whole_with_nothing_left_beside_it(tmp_path, monkeypatch,
                                                                exchange):
  exchanged, real = [], files._exchange  # False: systems without Linux's renameat2 exchange
  monkeypatch.setattr(files, "_exchange", lambda first, second: exchanged.append(
      exchange and real(first, second)) or exchanged[-1])
  target = tmp_path / "rgb"
  for content in ("first", "second"):
    staging = files.staging_folder(target)
    (staging / "model").write_text(content)
    (staging / "labels.txt").write_text(content)
    files.replace_folder(staging, target)
    assert {p.name: p.read_text() for p in target.iterdir()} == {"model": content,
                                                                  "labels.txt": content}
    assert [p.name for p in tmp_path.iterdir()] == ["rgb"]
  assert exchanged == [exchange]  # the second time, in one step where the system can
  (tmp_path / ".rgb.tmp").mkdir()  # what a killed attempt left
  (tmp_path / ".rgb.tmp" / "model").write_text("half")
  assert list(files.staging_folder(target).iterdir()) == []


def test_environmental_failures_are_told_from_the_inputs_own():
  from i3d._util.files import environmental
  from i3d.errors import UserError
  assert environmental(OSError(errno.ENOSPC, "No space left on device"))
  assert environmental(PermissionError(errno.EACCES, "Permission denied"))
  # A file over `ulimit -f` (or the filesystem's largest), also as Beam relays it in words.
  assert environmental(OSError(errno.EFBIG, "File too large"))
  assert environmental(RuntimeError("OSError: [Errno 27] File too large [while running 'Run']"))
  assert not environmental(FileNotFoundError(errno.ENOENT, "No such file"))
  assert not environmental(UserError("clip.mp4: not a video"))
  try:  # a full disk behind a one-line error is still the machine's fault
    try:
      raise OSError(errno.EDQUOT, "Disk quota exceeded")
    except OSError:
      raise UserError("out.npz: cannot write") from None
  except UserError as e:
    assert environmental(e)


def test_a_link_planted_at_the_temporary_name_is_not_written_through(tmp_path):
  victim = tmp_path / "victim.txt"
  victim.write_text("keep")
  (tmp_path / f".m.json.tmp{os.getpid()}").symlink_to(victim)
  write_json(tmp_path / "m.json", [1])
  assert victim.read_text() == "keep" and json.loads((tmp_path / "m.json").read_text()) == [1]


def test_inputs_must_be_regular_files(tmp_path):
  from i3d._util.files import check_regular
  from i3d.errors import UserError
  os.mkfifo(tmp_path / "x.npy")
  with pytest.raises(UserError, match="x.npy: a named pipe, not a regular file"):
    check_regular(tmp_path / "x.npy")
  with pytest.raises(UserError, match="a folder, not a regular file"):
    check_regular(tmp_path)

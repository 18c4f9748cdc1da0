"""Atomic writes: the old content or the new, never half a file, no temporary left behind."""

import errno
import json
import os

import pytest

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

"""Atomic writes: the old content or the new, never half a file, no temporary left behind."""

import json

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

"""JSON-lines logs: durable appends, a torn tail dropped, damage refused."""

import json
import os

import pytest

from i3d._util.jsonl import JsonLines, RemoteLines, open_lines, read
from i3d.errors import UserError


def read_lines(path):
  return [json.loads(line) for line in path.read_text().splitlines()]


def test_torn_tail_is_dropped_and_damage_refused(tmp_path):
  path = tmp_path / "p.jsonl"
  path.write_text('{"id": "a"}\n{"id": "b", "lab')
  log = JsonLines(path)
  assert log.records == [{"id": "a"}] and path.read_text() == '{"id": "a"}\n'
  log.append({"id": "c"})
  log.close()
  assert read_lines(path) == [{"id": "a"}, {"id": "c"}]
  path.write_text('{"id": "a"}\nnot json\n')
  with pytest.raises(UserError, match="damaged"):
    JsonLines(path)


def test_remote_lines_are_written_whole_when_synced(tmp_path):
  path = tmp_path / "m.jsonl"
  url = f"file://{path}"
  log = open_lines(url)
  assert isinstance(log, RemoteLines) and log.records == []
  log.append({"id": "a"})
  assert not path.exists()  # nothing depends on it until it is synced
  log.sync()
  log.append({"id": "b"})
  assert read_lines(path) == [{"id": "a"}]
  with log:
    pass
  assert read_lines(path) == [{"id": "a"}, {"id": "b"}] == read(url) == read(path)
  assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]
  path.write_text('{"id": "a"}\n[1]\n')
  with pytest.raises(UserError, match="damaged"):
    open_lines(url)


def test_a_linked_log_is_refused_and_never_written_through(tmp_path):
  victim = tmp_path / "victim.txt"
  victim.write_text('{"id": "a"}\nprecious, no newline at the end')
  (tmp_path / "failures.jsonl").symlink_to(victim)
  with pytest.raises(UserError, match="failures.jsonl is a symbolic link"):
    JsonLines(tmp_path / "failures.jsonl")
  (tmp_path / "new.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")  # dangling: append creates
  with pytest.raises(UserError, match="new.jsonl is a symbolic link"):
    JsonLines(tmp_path / "new.jsonl").append({"id": "b"})
  assert victim.read_text() == '{"id": "a"}\nprecious, no newline at the end'
  assert not (tmp_path / "elsewhere.jsonl").exists()


def test_a_named_pipe_as_a_log_is_refused_without_blocking(tmp_path):
  os.mkfifo(tmp_path / "results.jsonl")
  with pytest.raises(UserError, match="not a regular file"):
    JsonLines(tmp_path / "results.jsonl")

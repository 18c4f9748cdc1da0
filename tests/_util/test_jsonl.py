"""JSON-lines logs: durable appends, a torn tail dropped, damage refused."""

import json

import pytest

from i3d._util.jsonl import JsonLines
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

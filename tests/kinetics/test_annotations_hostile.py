"""Annotation files written by an attacker or a careless user: names that would leave their
folder, encodings, wrong JSON shapes and sizes that must stay linear (issue 15, items 1, 9, 10)."""

import json
import time

import pytest

from i3d import kinetics
from i3d.errors import UserError
from i3d.kinetics import Clip
from tests.support.cli import one_line_error

HEADER = "label,youtube_id,time_start,time_end,split\n"


def problems(tmp_path, text: str, name: str = "a.csv", version=None) -> list[tuple[int, str]]:
  path = tmp_path / name
  path.write_text(text, encoding="utf-8")
  return [(p.line, p.reason) for p in kinetics.read_annotations(path, version).problems]


@pytest.mark.parametrize("youtube_id", ["/some/dir/victim", "../../etc", "a/b", "a\\b", "..",
                                        ".hidden", "x\x00y"])
def test_ids_that_are_paths_are_line_numbered_problems(tmp_path, youtube_id):
  text = HEADER + "abseiling,okay_id-123,0,10,validation\n" + \
      f'abseiling,"{youtube_id}",0,10,validation\n'
  [(line, reason)] = problems(tmp_path, text)
  assert line == 3 and "youtube_id" in reason and "not a safe file name" in reason


def test_odd_but_harmless_ids_are_kept(tmp_path):
  text = HEADER + "abseiling,--0123456789abc,0,10,validation\nabseiling,a.b c,0,10,validation\n"
  assert problems(tmp_path, text) == []


@pytest.mark.parametrize("label", ["../../x", "a/b", "/abs", "..", "x\\y"])
def test_labels_that_are_paths_are_problems_without_a_version(tmp_path, label):
  [(line, reason)] = problems(tmp_path, HEADER + f'"{label}",okay_id-123,0,10,validation\n')
  assert line == 2 and "label" in reason and "not a safe file name" in reason


def test_json_ids_and_labels_are_checked_too(tmp_path):
  data = {"../escape": {"annotations": {"label": "abseiling", "segment": [0, 10]},
                        "subset": "validate"},
          "fine_id": {"annotations": {"label": "../x", "segment": [0, 10]}, "subset": "train"}}
  text = json.dumps(data, indent=1)
  found = problems(tmp_path, text, "a.json")
  lines = text.splitlines()
  assert [line for line, _ in found] == [lines.index(f' "{key}": {{') + 1 for key in data]
  assert all("not a safe file name" in reason for _, reason in found)


def test_json_line_numbers_take_linear_time(tmp_path):
  def entries(n):  # the last one has an unsafe label, so its line number is reported
    return {f"id{i:07d}": {"annotations": {"label": "../x" if i == n - 1 else "abseiling",
                                           "segment": [0, 10]}, "subset": "train"}
            for i in range(n)}

  def seconds(n):
    path = tmp_path / f"{n}.json"
    path.write_text(json.dumps(entries(n), indent=2))
    start = time.perf_counter()
    parsed = kinetics.read_annotations(path)
    assert len(parsed.clips) == n - 1
    return time.perf_counter() - start, parsed

  seconds(2000)  # warm up
  small, _ = seconds(4000)
  large, parsed = seconds(40000)
  # 10x the entries: linear is ~10x the time, the old quadratic count ~100x. Generous for noise.
  assert large < 40 * small + 0.5
  lines = (tmp_path / "40000.json").read_text().splitlines()
  assert lines[parsed.problems[0].line - 1] == '  "id0039999": {'  # still the right line


def test_json_repeated_ids_are_reported(tmp_path):
  entry = '{"annotations": {"label": "abseiling", "segment": [0, 10]}, "subset": "train"}'
  found = problems(tmp_path, f'{{"a_id": {entry},\n "a_id": {entry}}}', "a.json")
  assert found == [(2, "duplicate of line 1")]


def test_utf8_byte_order_mark_is_ignored(tmp_path):
  path = tmp_path / "bom.csv"
  path.write_bytes("\ufeff".encode() + (HEADER + "abseiling,id1,0,10,validation\n").encode())
  parsed = kinetics.read_annotations(path)
  assert parsed.problems == [] and parsed.clips == [Clip("id1", 0, 10, "validation",
                                                         "abseiling")]


def test_latin1_file_is_a_one_line_error_naming_the_line(tmp_path):
  path = tmp_path / "latin1.csv"
  path.write_bytes((HEADER + "abseiling,id1,0,10,validation\ncaf\xe9,id2,0,10,train\n")
                   .encode("latin-1"))
  with pytest.raises(UserError, match=r"line 3 is not UTF-8 text \(byte 0xe9\)"):
    kinetics.read_annotations(path)


@pytest.mark.parametrize("text, reason", [
    ('{"id1": {"annotations": [1, 2], "subset": "train"}}', "annotations [1, 2] is not an object"),
    ('{"id1": {"annotations": {"label": ["a"], "segment": [0, 10]}, "subset": "train"}}',
     "label ['a'] is not a single value"),
    ('{"id1": {"annotations": {"label": "a", "segment": [0, 10]}, "subset": {}}}',
     "split {} is not a single value"),
    ('{"id1": [1, 2]}', "entry is not an object"),
])
def test_wrongly_shaped_json_entries_are_problems(tmp_path, text, reason):
  assert problems(tmp_path, text, "a.json") == [(1, reason)]


@pytest.mark.parametrize("text", ['[{"id1": {}}]', '"text"', '{"a": {}} x', '{"a" {}}'])
def test_json_that_is_not_an_object_is_a_one_line_error(tmp_path, text):
  path = tmp_path / "a.json"
  path.write_text(text)
  with pytest.raises(UserError) as error:
    kinetics.read_annotations(path)
  assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_directory_path_is_a_one_line_error(tmp_path, capsys):
  with pytest.raises(UserError, match="cannot read it"):
    kinetics.read_annotations(tmp_path)
  err = one_line_error(capsys, "kinetics", "index", "--annotations", tmp_path,
                       "--video_dir", tmp_path)
  assert "cannot read it" in err


def test_a_file_with_no_usable_row_is_an_error_not_an_empty_success(tmp_path, capsys):
  path = tmp_path / "junk.csv"
  path.write_text(HEADER + ",id1,0,10,validation\n,id2,0,10,validation\n")
  err = one_line_error(capsys, "kinetics", "subset", "--annotations", path,
                       "--output", tmp_path / "out.csv")
  assert "none of its 2 rows is usable (line 2: missing label)" in err
  assert not (tmp_path / "out.csv").exists()


def test_negative_max_samples_is_refused(tmp_path, capsys):
  clips = [Clip(f"id{i}", 0, 10, "validation", "abseiling") for i in range(3)]
  with pytest.raises(UserError, match="max_samples must be 0 or more, got -1"):
    kinetics.select(clips, max_samples=-1)
  path = kinetics.write_annotations(clips, tmp_path / "a.csv")
  err = one_line_error(capsys, "kinetics", "subset", "--annotations", path, "--max_samples",
                       "-1", "--output", tmp_path / "out.csv")
  assert "max_samples" in err

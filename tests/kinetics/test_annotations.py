"""Kinetics annotations, label maps, subsets and the video index (no network)."""

import collections
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from i3d import kinetics
from i3d.errors import UserError
from i3d.kinetics import Clip
from i3d.model.labels import class_index, class_name, load_label_map
from tests.support.clips import FIXTURES
from tests.support.servers import write_video

FIXTURE = FIXTURES / "kinetics" / "kinetics-600_val.csv"


def test_real_kinetics600_validation_csv():
  parsed = kinetics.read_annotations(FIXTURE, version=600)
  assert len(parsed.clips) == 30000 and parsed.problems == []
  labels = collections.Counter(c.label for c in parsed.clips)
  assert len(labels) == 600 and set(labels) == set(load_label_map(600))
  assert {c.split for c in parsed.clips} == {"validation"}
  assert len({c.filename for c in parsed.clips}) == 30000
  first = parsed.clips[0]
  assert first == Clip("yq_M1PMw2hY", 38, 48, "validation", "abseiling", None)
  assert str(first.relpath) == "validation/abseiling/yq_M1PMw2hY_000038_000048.mp4"


def test_real_csv_labels_are_not_all_kinetics400_classes():
  parsed = kinetics.read_annotations(FIXTURE, version=400)
  assert parsed.problems and all("not a class" in p.reason for p in parsed.problems)
  assert len(parsed.clips) + len(parsed.problems) == 30000
  assert parsed.problems[0].line >= 2


def test_malformed_rows_are_reported_with_line_numbers(tmp_path):
  path = tmp_path / "val.csv"
  path.write_text(
      "label,youtube_id,time_start,time_end,split,is_cc\n"
      "abseiling,aaaaaaaaaaa,10,20,val,1\n"          # line 2: fine
      "abseiling,,10,20,val,0\n"                     # line 3: no id
      "abseiling,bbbbbbbbbbb,30,30,val,0\n"          # line 4: end <= start
      "dancing the moon,ccccccccccc,1,11,val,0\n"    # line 5: unknown label
      "abseiling,ddddddddddd,1,11\n"                 # line 6: missing field
      "abseiling,eeeeeeeeeee,x,11,val,0\n"           # line 7: not a number
      "abseiling,fffffffffff,1,11,holdout,0\n"       # line 8: unknown split
      "abseiling,aaaaaaaaaaa,10,20,val,1\n"          # line 9: duplicate of line 2
      "\"backflip (human)\",ggggggggggg,0,10,validate,0\n")  # line 10: fine
  parsed = kinetics.read_annotations(path, version=600)
  assert [c.youtube_id for c in parsed.clips] == ["aaaaaaaaaaa", "ggggggggggg"]
  assert parsed.clips[0].is_cc is True and parsed.clips[1].label == "backflip (human)"
  reasons = {p.line: p.reason for p in parsed.problems}
  assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9]
  assert "youtube_id" in reasons[3] and "<=" in reasons[4] and "not a class" in reasons[5]
  assert "fields" in reasons[6] and "number" in reasons[7] and "split" in reasons[8]
  assert "line 2" in reasons[9]
  assert parsed.problems[0].text == "abseiling,,10,20,val,0"


def test_names_with_commas_quotes_and_parentheses_survive(tmp_path):
  odd = ['a, b', 'say "hi"', 'x (y, "z")\nnext line']
  clips = [Clip(f"id{i}_-xyzab", i, i + 10, "train", name, i % 2 == 0)
           for i, name in enumerate(odd)]
  path = kinetics.write_annotations(clips + [Clip("tst", 5, 15, "test")], tmp_path / "o.csv")
  parsed = kinetics.read_annotations(path)
  assert parsed.problems == [] and parsed.clips == clips + [Clip("tst", 5, 15, "test")]
  path.write_text(path.read_text() + "label,missing,1,0,train,\n")
  assert kinetics.read_annotations(path).problems[0].line == 7  # after a two-line record


def test_test_split_without_label_or_is_cc(tmp_path):
  path = tmp_path / "test.csv"
  path.write_text("youtube_id,time_start,time_end,split\nabc,0,10,test\nxyz,5,15,train\n")
  parsed = kinetics.read_annotations(path, version=700)
  assert parsed.clips == [Clip("abc", 0, 10, "test", None, None)]
  assert str(parsed.clips[0].relpath) == "test/abc_000000_000010.mp4"
  assert parsed.problems[0].line == 3 and "label" in parsed.problems[0].reason


def test_activitynet_json(tmp_path):
  path = tmp_path / "val.json"
  data = {
      "aaaaaaaaaaa": {"annotations": {"label": "abseiling", "segment": [38.0, 48.0]},
                      "duration": 10.0, "subset": "validate", "url": "https://youtu.be/a"},
      "bbbbbbbbbbb": {"annotations": {"segment": [1.0, 11.0]}, "duration": 10.0,
                      "subset": "test", "url": "u"},
      "ccccccccccc": {"annotations": {"label": "abseiling", "segment": [5.0, 2.0]},
                      "duration": 10.0, "subset": "train", "url": "u"},
      "ddddddddddd": {"annotations": {"label": "abseiling", "segment": [5.5, 15.5]},
                      "duration": 10.0, "subset": "train", "url": "u"},
  }
  path.write_text(json.dumps(data, indent=1))
  parsed = kinetics.read_annotations(path, version="700-2020")
  assert parsed.clips == [Clip("aaaaaaaaaaa", 38, 48, "validation", "abseiling"),
                          Clip("bbbbbbbbbbb", 1, 11, "test")]
  assert [p.reason.split()[0] for p in parsed.problems] == ["time_end", "time"]
  lines = path.read_text().splitlines()
  for p in parsed.problems:
    assert json.loads(p.text).popitem()[0] in lines[p.line - 1]


def test_bad_inputs_are_one_line_user_errors(tmp_path):
  with pytest.raises(UserError, match="not found"):
    kinetics.read_annotations(tmp_path / "nope.csv")
  (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
  with pytest.raises(UserError, match="youtube_id"):
    kinetics.read_annotations(tmp_path / "bad.csv")
  with pytest.raises(UserError, match="400, 600, 700"):
    kinetics.normalize_version("500")
  with pytest.raises(UserError, match="validation"):
    kinetics.normalize_split("dev")
  with pytest.raises(UserError, match="'playing cricket'"):
    kinetics.check_classes(["abseiling", "playing crickett"], 400)


def test_versions_and_label_maps_both_directions():
  assert [kinetics.normalize_version(v) for v in (400, "600", "700-2020", "kinetics-700")] == [
      400, 600, 700, 700]
  for version, size in ((400, 400), (600, 600), (700, 700)):
    names = load_label_map(version)
    assert len(names) == size == len(set(names))
    assert all(class_index(class_name(i, version), version) == i for i in range(0, size, 37))
  assert class_name(0, 400) == "abseiling" and class_index("zumba", 400) == 399
  assert kinetics.check_classes(["zumba"], "400") == ["zumba"]


LABELS = ["a", "b", "c", "d"]
clip_lists = st.lists(
    st.builds(Clip, youtube_id=st.text("abcdefgh", min_size=3, max_size=6),
              time_start=st.integers(0, 3), time_end=st.just(10),
              split=st.sampled_from(["train", "validation"]), label=st.sampled_from(LABELS)),
    max_size=40, unique_by=lambda c: (c.split, c.filename))


@settings(max_examples=150, deadline=None)
@given(clips=clip_lists, classes=st.none() | st.sets(st.sampled_from(LABELS)),
       splits=st.none() | st.lists(st.sampled_from(["train", "val"]), min_size=1),
       max_samples=st.none() | st.integers(0, 12), shuffle=st.booleans(),
       seed=st.integers(0, 3), data=st.data())
def test_select_semantics(clips, classes, splits, max_samples, shuffle, seed, data):
  present = data.draw(st.sets(st.sampled_from([c.filename for c in clips] or ["x"])))
  chosen = kinetics.select(clips, splits=splits, classes=classes, max_samples=max_samples,
                           shuffle=shuffle, seed=seed, present=present)
  wanted_splits = {kinetics.normalize_split(s) for s in splits} if splits else {"train",
                                                                               "validation"}
  assert len(set(chosen)) == len(chosen) and set(chosen) <= set(clips)
  for split in wanted_splits:
    pool = [c for c in clips if c.split == split and (classes is None or c.label in classes)]
    got = [c for c in chosen if c.split == split]
    assert len(got) == min(len(pool), max_samples if max_samples is not None else len(pool))
    local = [c for c in pool if c.filename in present]
    assert sum(c.filename in present for c in got) == min(len(local), len(got))  # local first
    if not shuffle and not present:
      assert got == pool[:len(got)]
  assert all(c.split in wanted_splits and (classes is None or c.label in classes)
             for c in chosen)
  again = kinetics.select(list(clips), splits=splits, classes=classes, max_samples=max_samples,
                          shuffle=shuffle, seed=seed, present=present)
  assert again == chosen


def test_shuffle_depends_on_seed_and_max_samples_is_per_split():
  clips = [Clip(f"v{i:03d}", 0, 10, split, "a") for i in range(50)
           for split in ("train", "validation")]
  runs = {seed: kinetics.select(clips, shuffle=True, seed=seed, max_samples=10)
          for seed in range(3)}
  assert len({tuple(r) for r in runs.values()}) == 3
  assert all(collections.Counter(c.split for c in r) == {"train": 10, "validation": 10}
             for r in runs.values())
  assert kinetics.select(clips, max_samples=3, splits=["validation"]) == clips[1:6:2]


def test_index_found_missing_unreadable_and_class_counts(tmp_path):
  clips = [Clip("good", 0, 10, "train", "a"), Clip("flat", 0, 10, "train", "a"),
           Clip("gone", 0, 10, "train", "b"), Clip("junk", 0, 10, "train", "b")]
  write_video(tmp_path / clips[0].relpath)
  write_video(tmp_path / "elsewhere" / clips[1].filename)  # any layout is found by name
  write_video(tmp_path / clips[3].relpath).write_bytes(b"not a video")
  write_video(tmp_path / "train" / "b" / (clips[2].filename + ".part"))  # partial: not there
  write_video(tmp_path / ".partial" / "x" / clips[2].filename)  # scratch space: not there
  rows = kinetics.index_videos(clips, tmp_path)
  assert [r.status for r in rows] == ["found", "found", "missing", "unreadable"]
  assert rows[1].path == tmp_path / "elsewhere" / clips[1].filename
  counts = kinetics.class_counts(rows)
  assert counts["a"]["found"] == 2 and counts["b"] == {"missing": 1, "unreadable": 1}
  assert [r.status for r in kinetics.index_videos(clips, tmp_path, check_readable=False)][3] == (
      "found")
  assert kinetics.parse_filename("a_b-c_000001_000011.mp4") == ("a_b-c", 1, 11)

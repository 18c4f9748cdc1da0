"""`i3d features` finds its videos: named files, and annotated clips under --video_dir."""

from pathlib import Path

import pytest

from i3d import kinetics
from i3d.cli import features
from i3d.cli.main import _parse
from i3d.errors import UserError


def test_jobs_from_files_and_annotations(tmp_path, capsys):
  clips = [kinetics.Clip("abcdefghijk", 10, 20, "validation", "abseiling"),
           kinetics.Clip("lmnopqrstuv", 0, 10, "validation", "abseiling")]
  kinetics.write_annotations(clips, tmp_path / "val.csv")
  found = tmp_path / "videos" / "validation" / "abseiling" / clips[0].filename
  found.parent.mkdir(parents=True)
  found.write_bytes(b"")
  args = _parse(["i3d", "features", "a/clip.mp4", "b/other_inputs.npz", "--annotations",
                 str(tmp_path / "val.csv"), "--video_dir", str(tmp_path / "videos"),
                 "--output_dir", str(tmp_path / "out")])
  assert features._jobs(args) == [("clip", Path("a/clip.mp4")),
                                  ("other", Path("b/other_inputs.npz")),
                                  ("abcdefghijk_000010_000020", found)]
  assert "1 annotated clip not under" in capsys.readouterr().err


def test_annotations_need_a_video_dir_and_something_to_do(tmp_path):
  args = _parse(["i3d", "features", "--annotations", "val.csv", "--output_dir", "out"])
  with pytest.raises(UserError, match="go together"):
    features._jobs(args)
  with pytest.raises(UserError, match="no videos"):
    features._jobs(_parse(["i3d", "features", "--output_dir", "out"]))


def test_records_go_alone_and_without_a_trim(tmp_path):
  base = ["i3d", "features", "--records", str(tmp_path), "--output_dir", "out"]
  with pytest.raises(UserError, match="or --records, not both"):
    features._record_jobs(_parse([*base[:2], "clip.mp4", *base[2:]]))
  with pytest.raises(UserError, match="do not apply to --records"):
    features._record_jobs(_parse([*base, "--time_start", "1"]))
  with pytest.raises(UserError, match="not a records folder"):
    features._record_jobs(_parse(base))

"""`i3d kinetics subset|download|index`, run in-process through the real argument parser."""

import csv
from pathlib import Path

import pytest

from i3d import kinetics
from i3d.cli import main as cli
from tests.support.clips import FIXTURES
from tests.support.servers import MirrorServer, tar_gz, write_video

FIXTURE = FIXTURES / "kinetics" / "kinetics-600_val.csv"


def run_cli(*argv: str) -> int:
  """Runs `i3d ARGV...` like the console script does; returns the exit status."""
  with pytest.raises(SystemExit) as exit_:
    cli._main(cli._parse(["i3d", *map(str, argv)]))
  return exit_.value.code


def subset(tmp_path: Path, *extra: str, name: str = "subset.csv") -> list[dict]:
  """Rows written by a `kinetics subset` run over the real Kinetics-600 validation CSV."""
  assert run_cli("kinetics", "subset", "--version", "600", "--split", "validation",
                 "--classes", "playing cricket,abseiling", "--annotations", FIXTURE,
                 "--output", tmp_path / name, *extra) == 0
  with (tmp_path / name).open() as f:
    return list(csv.DictReader(f))


def test_subset_classes_max_samples_shuffle_seed(tmp_path):
  rows = subset(tmp_path, "--max_samples", "50", "--shuffle", "--seed", "0")
  assert len(rows) == 50 and {r["label"] for r in rows} == {"playing cricket", "abseiling"}
  assert rows == subset(tmp_path, "--max_samples", "50", "--shuffle", "--seed", "0", name="b")
  assert rows != subset(tmp_path, "--max_samples", "50", "--shuffle", "--seed", "1", name="c")
  assert len(subset(tmp_path, name="all")) == 100  # 50 validation clips per class


def test_subset_prefers_clips_already_in_video_dir(tmp_path):
  everything = kinetics.read_annotations(FIXTURE, 600).clips
  local = [c for c in everything if c.label == "abseiling"][-3:]
  for clip in local:
    write_video(tmp_path / "videos" / clip.relpath)
  rows = subset(tmp_path, "--max_samples", "5", "--video_dir", tmp_path / "videos")
  assert {r["youtube_id"] for r in rows[:3]} == {c.youtube_id for c in local}


def test_errors_are_one_line_with_a_hint(tmp_path, capsys):
  assert run_cli("kinetics", "subset", "--version", "600", "--classes", "playing crickett",
                 "--annotations", FIXTURE, "--output", tmp_path / "s.csv") == 2
  err = capsys.readouterr().err.strip()
  assert "\n" not in err and "did you mean 'playing cricket'" in err
  assert run_cli("kinetics", "index", "--annotations", tmp_path / "none.csv",
                 "--video_dir", tmp_path) == 2
  assert "not found" in capsys.readouterr().err
  assert run_cli("kinetics", "subset", "--version", "800", "--annotations", FIXTURE,
                 "--output", tmp_path / "s.csv") == 2
  assert "unknown Kinetics version" in capsys.readouterr().err


def test_index_reports_counts_and_writes_statuses(tmp_path, capsys):
  clips = [kinetics.Clip(f"c{i}", 0, 10, "validation", "abseiling") for i in range(3)]
  kinetics.write_annotations(clips, tmp_path / "a.csv")
  write_video(tmp_path / "v" / clips[0].relpath)
  write_video(tmp_path / "v" / clips[1].relpath).write_bytes(b"")
  assert run_cli("kinetics", "index", "--version", "600", "--annotations", tmp_path / "a.csv",
                 "--video_dir", tmp_path / "v", "--output", tmp_path / "index.csv") == 0
  out = capsys.readouterr().out
  assert "abseiling\tfound 1\tmissing 1\tunreadable 1" in out
  with (tmp_path / "index.csv").open() as f:
    assert [r["status"] for r in csv.DictReader(f)] == ["found", "unreadable", "missing"]


def test_download_whole_split_from_a_mirror(tmp_path, capsys, monkeypatch):
  monkeypatch.setenv("I3D_KINETICS_DIR", str(tmp_path / "cache"))
  clip = kinetics.Clip("xyz", 3, 13, "validation", "zumba")
  video = write_video(tmp_path / "src.mp4").read_bytes()
  files = {"/400/val/k400_val_path.txt": b"part_0.tar.gz\nmissing.tar.gz\n",
           "/400/val/part_0.tar.gz": tar_gz({clip.filename: video}),
           "/400/annotations/val.csv": b"label,youtube_id,time_start,time_end,split\n"
                                       b"zumba,xyz,3,13,val\n"}
  with MirrorServer(files) as server:
    assert run_cli("kinetics", "download", "--version", "400", "--split", "validation",
                   "--video_dir", tmp_path / "v", "--base_url", server.url) == 1
  out = capsys.readouterr().out
  assert "1 failed (unavailable)" in out and "1 ok" in out and "download_report.jsonl" in out
  assert (tmp_path / "v" / clip.relpath).read_bytes() == video

"""Flags that would exhaust memory are bounded by what the machine has, in one line (issue 23,
item 8), and an unknown Beam runner is one line too."""

import pytest

from i3d._util import env
from tests.support.cli import one_line_error


@pytest.mark.parametrize("frames", ["15000", "2000000000"])
def test_window_frames_beyond_the_frame_limit(tmp_path, capsys, frames):
  err = one_line_error(capsys, "predict", tmp_path / "v.mp4", "--windows", "2",
                       "--window_frames", frames)
  assert f"--window_frames {frames} is more than 9000 frames ($I3D_MAX_FRAMES)" in err


def test_window_frames_beyond_the_free_memory(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(env, "available_memory", lambda: 100 << 20)
  err = one_line_error(capsys, "predict", tmp_path / "v.mp4", "--windows", "2",
                       "--window_frames", "64", "--crops", "3")
  assert "a view needs about 768 MiB and this machine has 100 MiB free; use at most 9" in err


@pytest.mark.parametrize("runner", [[], ["--runner", "DirectRunner"]])
def test_more_workers_than_the_memory_holds(tmp_path, capsys, monkeypatch, runner):
  monkeypatch.setattr(env, "available_memory", lambda: 3 << 30)
  err = one_line_error(capsys, "preprocess", "--annotations", tmp_path / "a.csv", "--video_dir",
                       tmp_path, "--output_dir", tmp_path / "out", "--workers", "1000", *runner)
  assert "--workers 1000: each local worker process needs about 1 GiB and this machine has " \
         "memory free for 3; use at most 3" in err


def test_an_unknown_runner(tmp_path, capsys):
  err = one_line_error(capsys, "preprocess", "--annotations", tmp_path / "a.csv", "--video_dir",
                       tmp_path, "--output_dir", tmp_path / "out", "--runner", "NoSuchRunner")
  assert "--runner NoSuchRunner: not a Beam runner" in err


def test_a_trim_window_starting_at_1e308(tmp_path, capsys):
  from tests.support.videos import write_indexed_video
  video = write_indexed_video(tmp_path / "v.avi", 5, 25)
  err = one_line_error(capsys, "preprocess", video, "--time_start", "1e308", "--output",
                       tmp_path / "v.npz")
  assert "trim window [1e+308, None] s starts after 3.1536e+07 s" in err

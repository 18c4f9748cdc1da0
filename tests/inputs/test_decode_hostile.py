"""Poison inputs of the video pipeline: videos that would explode in memory, file names OpenCV
cannot take, damaged caches and arrays whose headers lie (issue 15, items 4-8)."""

import json
import os
import subprocess
import sys
import tracemalloc
import zipfile

import imageio_ffmpeg
import numpy as np
import pytest

from i3d._util import env
from i3d.errors import InputError, UserError
from i3d.inputs import cache, decode, samples
from i3d.inputs.settings import InputSettings
from tests.support.clips import REPO
from tests.support.videos import write_indexed_video, write_video


def sparse_video(path, seconds_apart: float):
  """25 tiny frames spaced `seconds_apart` by their timestamps (a few KB on disk)."""
  subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi",
                  "-i", "testsrc=size=32x24:rate=25", "-frames:v", "25", "-c:v", "mpeg4",
                  "-bsf:v", f"setts=ts=N*{seconds_apart:g}/TB", str(path)], check=True)
  return path


def test_frames_far_apart_hit_the_frame_limit_before_memory_grows(tmp_path, monkeypatch):
  assert env.limit("I3D_MAX_FRAMES") == 4 * 3600 * 25  # a timestamp-bomb guard: 4 hours
  monkeypatch.setenv("I3D_MAX_FRAMES", "9000")
  path = sparse_video(tmp_path / "sparse.mp4", 100)  # 2,400 s: 60,000 slots at 25 fps
  assert path.stat().st_size < 20_000
  with pytest.raises(UserError, match="more than 9000 frames"):
    decode.count_frames(path)
  tracemalloc.start()
  with pytest.raises(UserError, match=r"sparse.mp4: more than 9000 frames at 25 fps "
                                      r"\(\$I3D_MAX_FRAMES\); trim it"):
    decode.read_video(path)
  peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  assert peak < 9001 * 32 * 24 * 3 * 2  # at most the limit's worth of tiny frames
  monkeypatch.setenv("I3D_MAX_FRAMES", "100")
  with pytest.raises(UserError, match="more than 100 frames"):
    decode.read_video(path)
  assert len(decode.read_video(path, time_end=2.0).frames) == 50  # a trim window stays fine


def test_extreme_aspect_ratio_is_refused_before_resizing(tmp_path, monkeypatch):
  path = write_video(tmp_path / "strip.avi", [np.zeros((8, 4000, 3), np.uint8)] * 2, 25)
  with pytest.raises(UserError, match=r"strip.avi: frames of 4000x8 pixels are over the limits "
                                      r".*aspect ratio 8 \(\$I3D_MAX_ASPECT_RATIO\)"):
    decode.read_video(path)
  assert not decode.is_readable(path)
  monkeypatch.setenv("I3D_MAX_ASPECT_RATIO", "600")
  assert decode.read_video(path).frames.shape == (2, 8, 4000, 3)


def test_frames_over_the_pixel_limit_are_refused(tmp_path, monkeypatch):
  path = write_indexed_video(tmp_path / "v.avi", 3, 25)
  monkeypatch.setenv("I3D_MAX_PIXELS", "1000")
  with pytest.raises(UserError, match=r"64x48 pixels .* 1000 pixels \(\$I3D_MAX_PIXELS\)"):
    decode.read_video(path)


NON_UTF8 = """
import os, sys
from i3d.inputs import decode
path = os.fsdecode(os.fsencode(sys.argv[1]) + b"/bad\\xff name.avi")
with open(path, "wb") as f, open(sys.argv[2], "rb") as source:
  f.write(source.read())
print(decode.read_video(path).frames.shape, decode.is_readable(path))
"""


def test_non_utf8_file_names_are_decoded_not_crashed_on(tmp_path):
  source = write_indexed_video(tmp_path / "v.avi", 4, 25)
  run = subprocess.run([sys.executable, "-c", NON_UTF8, str(tmp_path), str(source)],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
  assert run.returncode == 0, run.stderr  # OpenCV segfaulted (-11) on such names
  assert run.stdout.strip() == "(4, 48, 64, 3) True"


def test_nan_trim_window_is_a_user_error(tmp_path):
  path = write_indexed_video(tmp_path / "v.avi", 5, 25)
  for start, end in ((float("nan"), None), (None, float("nan")), (float("inf"), None)):
    with pytest.raises(UserError, match="empty trim window"):
      decode.read_video(path, start, end)


def matching_cache(tmp_path, inputs: dict, settings=InputSettings()):
  """A video and a cache beside it whose settings match it but whose contents are `inputs`."""
  path = write_indexed_video(tmp_path / "v.avi", 5, 25)
  stored = cache.save_inputs(cache.default_cache_path(path), inputs, settings.record(path))
  return path, stored


def test_a_malformed_cache_with_matching_settings_is_recomputed(tmp_path, capsys):
  path, stored = matching_cache(tmp_path, {"rgb": np.zeros((1, 5, 50, 50, 3), np.float32)})
  inputs = cache.cached_inputs(path, InputSettings(), ["rgb"], stored)
  assert inputs["rgb"].shape == (1, 5, 224, 224, 3)
  assert "warning: ignoring the cache" in capsys.readouterr().err


def test_a_half_written_cache_is_recomputed(tmp_path, capsys):
  path, stored = matching_cache(tmp_path, {"rgb": np.zeros((1, 5, 224, 224, 3), np.float32)})
  stored.write_bytes(stored.read_bytes()[:5000])  # what a full disk left
  inputs = cache.cached_inputs(path, InputSettings(), ["rgb"], stored)
  assert inputs["rgb"].shape == (1, 5, 224, 224, 3) and inputs["rgb"].min() < 0
  assert "not a readable inputs .npz" in capsys.readouterr().err


def test_a_failed_cache_write_leaves_the_old_cache(tmp_path, monkeypatch):
  old = {"rgb": np.full((1, 5, 224, 224, 3), 0.5, np.float32)}
  path, stored = matching_cache(tmp_path, old)

  def full_disk(f, **arrays):
    f.write(b"PK\3\4 partial")
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(np, "savez", full_disk)
  with pytest.raises(OSError):
    cache.save_inputs(stored, {"rgb": np.zeros((1, 5, 224, 224, 3), np.float32)}, {})
  monkeypatch.undo()
  np.testing.assert_array_equal(cache.load_inputs(stored)[0]["rgb"], old["rgb"])
  assert sorted(p.name for p in tmp_path.iterdir()) == ["v.avi", "v_inputs.npz"]


BAD_ARRAYS = [
    (np.zeros((1, 9, 224, 224, 3), np.int8), "dtype int8"),
    (np.zeros((1, 9, 224, 224, 3), np.uint8), "dtype uint8"),
    (np.zeros((1, 9, 224, 224, 3), np.complex64), "dtype complex64"),
    (np.array("text"), "dtype <U4"),
    (np.float32(0.5), r"shape \(\)"),
    (np.zeros((9, 224, 3), np.float32), r"shape \(9, 224, 3\)"),
    (np.zeros((9, 224, 224, 3), np.float32), r"shape \(9, 224, 224, 3\)"),
    (np.zeros((1, 9, 100, 100, 3), np.float32), r"shape \(1, 9, 100, 100, 3\)"),
    (np.zeros((1, 9, 224, 224, 4), np.float32), r"shape \(1, 9, 224, 224, 4\)"),
    (np.zeros((1, 0, 224, 224, 3), np.float32), "1 clips of 0 frames"),
    (np.full((1, 9, 224, 224, 3), np.nan, np.float32), "NaN or infinite"),
    (np.full((1, 9, 224, 224, 3), np.inf, np.float32), "NaN or infinite"),
]


@pytest.mark.parametrize("array, problem", BAD_ARRAYS)
def test_inputs_npz_is_checked(tmp_path, array, problem):
  path = tmp_path / "x.npz"
  np.savez(path, rgb=array)
  with pytest.raises(InputError, match=f"x.npz: rgb input (has|holds) {problem}"):
    cache.load_inputs(path)


@pytest.mark.parametrize("array, problem", BAD_ARRAYS)
def test_npy_samples_are_checked(tmp_path, array, problem):
  path = tmp_path / "x.npy"
  np.save(path, array)
  with pytest.raises(InputError, match=f"rgb sample .*x.npy: rgb input (has|holds) {problem}"):
    samples.load_sample(path, "rgb")


def lying_header(f, shape=(1, 10 ** 12, 224, 224, 3)) -> None:
  """A float32 .npy header claiming `shape` (55 TiB by default) with 16 bytes of data."""
  np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                           "shape": shape})
  f.write(b"\0" * 16)


def test_npy_header_claiming_terabytes_is_refused_before_allocating(tmp_path):
  path = tmp_path / "huge.npy"
  with open(path, "wb") as f:
    lying_header(f)
  with pytest.raises(UserError, match=r"header claims a \(1, 1000000000000, 224, 224, 3\) "
                                      r"float32 array \(602112000000000000 bytes\)"):
    samples.load_sample(path, "rgb")


def test_npz_member_claiming_terabytes_is_refused_before_allocating(tmp_path):
  path = tmp_path / "huge.npz"
  with zipfile.ZipFile(path, "w") as archive, archive.open("rgb.npy", "w") as member:
    lying_header(member)
  with pytest.raises(UserError, match="huge.npz: rgb.npy: its header claims"):
    cache.load_inputs(path)


def test_cache_settings_that_are_not_an_object_are_refused(tmp_path):
  path = tmp_path / "x.npz"
  np.savez(path, settings=np.array(json.dumps([1, 2])),
           rgb=np.zeros((1, 9, 224, 224, 3), np.float32))
  with pytest.raises(UserError, match="settings record is not a JSON object"):
    cache.load_inputs(path)

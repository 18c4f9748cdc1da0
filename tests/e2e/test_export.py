"""`i3d export`: a SavedModel that serves any batch and clip length without this package."""

import collections
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from i3d._util import cpu
from i3d.errors import UserError
from i3d.model import hardware
from tests.support.clips import random_clip

# Runs where `import i3d` fails, to prove the SavedModel stands alone.
LOAD_ELSEWHERE = """
import sys, json
sys.modules["i3d"] = None
import numpy as np, tensorflow as tf, tensorflow_hub as hub
rgb, flow = np.load(sys.argv[2]), np.load(sys.argv[3])
out = {}
for name, loaded in (("saved_model", tf.saved_model.load(sys.argv[1])),
                     ("hub", hub.load(sys.argv[1]))):
  result = loaded.signatures["serving_default"](rgb=tf.constant(rgb), flow=tf.constant(flow))
  out[name] = {k: v.numpy().tolist() for k, v in result.items()}
print(json.dumps(out))
"""


def test_export_joint_serves_any_batch_and_length(joint_classifier, checkpoint_dir, tmp_path):
  export = subprocess.run(
      ["i3d", "export", "--eval_type", "joint", "--checkpoint_dir", str(checkpoint_dir),
       "--output", str(tmp_path / "model")], capture_output=True, text=True, timeout=600)
  assert export.returncode == 0, export.stderr
  assert export.stderr == ""  # no TensorFlow start-up lines, no "renamed input names" INFO line
  assert (tmp_path / "model" / "saved_model.pb").exists()
  labels = (tmp_path / "model" / "labels.txt").read_text().splitlines()
  assert labels == list(joint_classifier.labels)
  rgb, flow = random_clip(10, 3, seed=3, batch=2), random_clip(10, 2, seed=4, batch=2)
  np.save(tmp_path / "rgb.npy", rgb)
  np.save(tmp_path / "flow.npy", flow)
  loaded = subprocess.run([sys.executable, "-c", LOAD_ELSEWHERE, str(tmp_path / "model"),
                           str(tmp_path / "rgb.npy"), str(tmp_path / "flow.npy")],
                          capture_output=True, text=True, timeout=600)
  assert loaded.returncode == 0, loaded.stderr
  expected = joint_classifier(rgb=rgb, flow=flow).numpy()
  for result in json.loads(loaded.stdout.splitlines()[-1]).values():
    logits, probabilities = np.array(result["logits"]), np.array(result["probabilities"])
    assert logits.shape == (2, 400)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities.argmax(1) == expected.argmax(1)).all()


def test_export_rgb_signature_has_only_rgb(checkpoint_dir, tmp_path):
  from i3d import load_classifier
  from i3d.classify.export import check_output, export_saved_model
  classifier = load_classifier("rgb", checkpoint_dir, download=False)
  export_saved_model(classifier, tmp_path / "rgb")
  # An earlier export is swapped for the new one, leaving nothing beside it.
  first = (tmp_path / "rgb" / "saved_model.pb").stat().st_ino
  export_saved_model(classifier, tmp_path / "rgb", overwrite=True)
  assert (tmp_path / "rgb" / "saved_model.pb").stat().st_ino != first
  assert [p.name for p in tmp_path.iterdir()] == ["rgb"]
  signature = tf.saved_model.load(str(tmp_path / "rgb")).signatures["serving_default"]
  assert list(signature.structured_input_signature[1]) == ["rgb"]
  assert signature.structured_input_signature[1]["rgb"].shape.as_list() == [None, None, 224, 224,
                                                                            3]
  assert sorted(signature.structured_outputs) == ["logits", "probabilities"]
  # A different clip length than any traced before still runs.
  assert signature(rgb=tf.zeros([1, 17, 224, 224, 3]))["logits"].shape == (1, 400)
  # The export lists what it wrote, so --overwrite may replace it, and nothing else.
  check_output(tmp_path / "rgb", overwrite=True)
  (tmp_path / "rgb" / "variables" / "notes.txt").write_text("mine")
  with pytest.raises(UserError, match="holds files the export did not write"):
    check_output(tmp_path / "rgb", overwrite=True)


def conv3d_dtypes(signature) -> list[collections.Counter]:
  """Per traced forward function of a loaded signature, how many Conv3D ops run in each dtype."""
  library = signature.graph.as_graph_def().library.function
  counts = [collections.Counter(tf.as_dtype(n.attr["T"].type).name for n in f.node_def
                                if n.op == "Conv3D") for f in library]
  return [c for c in counts if c]


def test_bfloat16_export_runs_its_convolutions_in_bfloat16(joint_classifier, checkpoint_dir,
                                                          tmp_path):
  export = subprocess.run(
      ["i3d", "export", "--eval_type", "joint", "--checkpoint_dir", str(checkpoint_dir),
       "--precision", "bfloat16", "--output", str(tmp_path / "model")],
      capture_output=True, text=True, timeout=600)
  assert export.returncode == 0, export.stderr
  assert "bfloat16 convolutions" in export.stdout
  signature = tf.saved_model.load(str(tmp_path / "model")).signatures["serving_default"]
  # One forward per tower: every convolution in bfloat16 but the float32 logits head; where
  # Winograd pays, each of the 10 wide 3x3x3 convolutions is four 1x3x3 ones.
  winograd = (hardware.bfloat16_winograd_pays(cpu.cpu_flags())
              and not tf.config.list_physical_devices("GPU"))
  bfloat16 = 39 + 3 * 10 * winograd
  assert conv3d_dtypes(signature) == [collections.Counter(bfloat16=bfloat16, float32=1)] * 2
  assert {s.dtype for s in signature.structured_input_signature[1].values()} == {tf.float32}
  assert {s.dtype for s in signature.structured_outputs.values()} == {tf.float32}
  rgb, flow = random_clip(9, 3, seed=6), random_clip(9, 2, seed=7)
  logits = signature(rgb=tf.constant(rgb), flow=tf.constant(flow))["logits"].numpy()
  expected = joint_classifier(rgb=rgb, flow=flow).numpy()
  assert 0 < np.abs(logits - expected).max() / np.abs(expected).max() < 1e-2

"""evaluate_sample.py end to end on format-exact checkpoints: released output format and errors.

The default joint run goes through a subprocess as users run it; the others run the script in
this process (`tests.support.sample_script`)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from i3d.inputs.samples import default_sample, load_sample
from i3d.model.labels import load_label_map
from tests.support.clips import REPO as ROOT
from tests.support.clips import random_clip
from tests.support.reference_i3d import reference_logits
from tests.support.sample_script import run_sample

LINE = re.compile(r"^(\S+) (\S+) (.+)$")
NOISE = ("cuInit", "oneDNN custom operations", "absl::InitializeLog", "cuda drivers")


def _run(*flags, env=None):
  """evaluate_sample.py FLAGS in a subprocess; its stderr never holds TensorFlow's start-up
  lines."""
  quiet = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
  result = subprocess.run([sys.executable, str(ROOT / "evaluate_sample.py"), *flags],
                          capture_output=True, text=True, timeout=600, env={**quiet, **(env or {})})
  assert not [line for line in result.stderr.splitlines() if any(n in line for n in NOISE)]
  return result


def _parse(stdout: str):
  lines = stdout.splitlines()
  assert lines[1:3] == ["", "Top classes and probabilities"]
  norm = float(re.fullmatch(r"Norm of logits: (\d+\.\d{6})", lines[0]).group(1))
  rows = [LINE.match(line).groups() for line in lines[3:]]
  for probability, logit, _ in rows:  # float32 values printed as the released script did
    assert str(np.float32(probability)) == probability and str(np.float32(logit)) == logit
  return norm, [(float(p), float(l), name) for p, l, name in rows]


def test_joint_default_sample_prints_released_format(checkpoint_dir):
  result = _run("--eval_type", "joint", "--checkpoint_dir", str(checkpoint_dir))
  assert result.returncode == 0, result.stderr
  norm, rows = _parse(result.stdout)
  logits = sum(reference_logits(str(checkpoint_dir / f"{s}_imagenet" / "model.ckpt"),
                                load_sample(default_sample(s), s))[0] for s in ("rgb", "flow"))
  probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
  labels = load_label_map(400)
  order = np.argsort(probabilities)[::-1][:20]
  assert len(rows) == 20
  assert [name for _, _, name in rows] == [labels[i] for i in order]
  np.testing.assert_allclose([l for _, l, _ in rows], logits[order], rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose([p for p, _, _ in rows], probabilities[order], rtol=1e-3, atol=1e-7)
  assert norm == pytest.approx(np.linalg.norm(logits), rel=1e-4)


def test_rgb600_with_npy_sample_uses_600_labels(checkpoint_dir, tmp_path):
  clip = random_clip(9, 3, seed=5)
  np.save(tmp_path / "rgb.npy", clip)
  result = run_sample("--eval_type", "rgb600", "--checkpoint_dir", str(checkpoint_dir),
                "--rgb_sample", str(tmp_path / "rgb.npy"), "--top_k", "3")
  assert result.returncode == 0, result.stderr
  _, rows = _parse(result.stdout)
  logits = reference_logits(str(checkpoint_dir / "rgb_scratch_kin600" / "model.ckpt"), clip)[0]
  labels = load_label_map(600)
  assert [name for _, _, name in rows] == [labels[i] for i in np.argsort(logits)[::-1][:3]]


def test_flow_scratch_uses_scratch_checkpoint(checkpoint_dir, tmp_path):
  clip = random_clip(9, 2, seed=6)
  np.save(tmp_path / "flow.npy", clip)
  result = run_sample("--eval_type", "flow", "--noimagenet_pretrained", "--checkpoint_dir",
                str(checkpoint_dir), "--flow_sample", str(tmp_path / "flow.npy"), "--top_k", "1")
  assert result.returncode == 0, result.stderr
  _, rows = _parse(result.stdout)
  logits = reference_logits(str(checkpoint_dir / "flow_scratch" / "model.ckpt"), clip)[0]
  assert rows[0][1] == pytest.approx(logits.max(), rel=1e-4)


@pytest.mark.parametrize("flags,message", [
    (["--eval_type", "rgb", "--rgb_sample", "{bad_npy}"], "expected (clips, frames, 224, 224, 3)"),
    (["--eval_type", "rgb", "--rgb_sample", "{tmp}/none.npy"], "not found"),
    (["--eval_type", "flow", "--flow_sample", "{text}"], "not a readable .npy"),
])
def test_bad_samples_are_one_line_errors(checkpoint_dir, tmp_path, flags, message):
  np.save(tmp_path / "bad.npy", np.zeros((1, 9, 112, 112, 3), np.float32))
  (tmp_path / "text.npy").write_text("hello")
  flags = [f.format(bad_npy=tmp_path / "bad.npy", tmp=tmp_path, text=tmp_path / "text.npy")
           for f in flags]
  result = run_sample(*flags, "--checkpoint_dir", str(checkpoint_dir))
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  errors = [l for l in result.stderr.splitlines() if l.startswith("evaluate_sample.py: error:")]
  assert len(errors) == 1 and message in errors[0]


def test_missing_checkpoint_offline_is_a_clear_error(tmp_path):
  result = run_sample("--eval_type", "rgb", "--checkpoint_dir", str(tmp_path),
                env={"I3D_CHECKPOINT_BASE_URL": "http://127.0.0.1:9"})
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert "by hand" in result.stderr and "rgb_imagenet/model.ckpt.index" in result.stderr
  assert ".part" not in result.stderr and list(tmp_path.iterdir()) == []  # no empty folder


def test_offline_joint_names_both_missing_checkpoints_at_once(tmp_path):
  result = run_sample("--eval_type", "joint", "--checkpoint_dir", str(tmp_path), "--offline")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.startswith("evaluate_sample.py: error: 2 checkpoints missing "
                                  "(rgb_imagenet, flow_imagenet):")
  assert f"into {tmp_path / 'flow_imagenet'}/:" in result.stderr
  assert list(tmp_path.iterdir()) == []  # nothing fetched, nothing left behind


def test_missing_label_map_is_a_clear_error(checkpoint_dir, tmp_path):
  np.save(tmp_path / "rgb.npy", random_clip(9, 3))
  result = run_sample("--eval_type", "rgb", "--checkpoint_dir", str(checkpoint_dir),
                "--rgb_sample", str(tmp_path / "rgb.npy"),
                env={"I3D_DATA_DIR": str(tmp_path / "empty")})
  assert result.returncode == 1 and "Traceback" not in result.stderr
  errors = [l for l in result.stderr.splitlines() if l.startswith("evaluate_sample.py: error:")]
  assert len(errors) == 1
  assert f"label map {tmp_path / 'empty' / 'label_map.txt'} not found" in errors[0]

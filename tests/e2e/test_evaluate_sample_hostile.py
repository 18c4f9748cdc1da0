"""evaluate_sample.py on short, empty and lying samples: no NaN with exit 0, one line for each
bad input (issue 15, item 7 and the `.npy` cases of "Tracebacks that should be one line")."""

import re

import numpy as np

from tests.inputs.test_decode_hostile import lying_header
from tests.support.clips import random_clip
from tests.support.sample_script import run_sample


def test_a_short_sample_is_looped_not_nan(checkpoint_dir, tmp_path):
  np.save(tmp_path / "rgb.npy", random_clip(5, 3))
  result = run_sample("--eval_type", "rgb", "--checkpoint_dir", str(checkpoint_dir),
                "--rgb_sample", str(tmp_path / "rgb.npy"), "--top_k", "1")
  assert result.returncode == 0, result.stderr
  norm = float(re.match(r"Norm of logits: (\S+)", result.stdout).group(1))
  assert np.isfinite(norm) and norm > 0


def one_error(result) -> str:
  assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
  errors = [l for l in result.stderr.splitlines() if l.startswith("evaluate_sample.py: error:")]
  assert len(errors) == 1, result.stderr
  return errors[0]


def test_empty_nan_and_lying_samples_are_one_line(checkpoint_dir, tmp_path):
  np.save(tmp_path / "empty.npy", np.zeros((1, 0, 224, 224, 3), np.float32))
  np.save(tmp_path / "nan.npy", np.full((1, 9, 224, 224, 3), np.nan, np.float32))
  with open(tmp_path / "huge.npy", "wb") as f:
    lying_header(f)
  for name, words in (("empty", "1 clips of 0 frames"), ("nan", "NaN or infinite"),
                      ("huge", "header claims")):
    result = run_sample("--eval_type", "rgb", "--checkpoint_dir", str(checkpoint_dir),
                  "--rgb_sample", str(tmp_path / f"{name}.npy"))
    assert words in one_error(result)
  # Refused as `i3d predict` refuses it, not a bare header with exit 0.
  result = run_sample("--eval_type", "rgb", "--checkpoint_dir", str(checkpoint_dir),
                      "--top_k", "0")
  assert one_error(result) == "evaluate_sample.py: error: --top_k must be at least 1, got 0"

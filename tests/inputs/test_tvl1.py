"""Our XLA TV-L1 beyond accuracy: one compilation per frame size, kept across processes by
TensorFlow's persistent XLA cache, and the same flow whichever way pairs are grouped."""

import os
import subprocess
import sys

import numpy as np

from i3d.inputs import flow
from i3d.inputs.settings import TVL1Params
from tests.support.clips import REPO

# Small but complete: two scales, two warps, median filter, the stopping rule.
SMALL = TVL1Params(scales=2, warps=2, inner_iterations=10, outer_iterations=2)

MIXED_SIZES = """
import sys
from i3d._util import env
env.set_library_defaults()  # the XLA cache of $I3D_XLA_CACHE_DIR, as the `i3d` command sets it
import numpy as np
import tensorflow as tf
from i3d.inputs import flow
from i3d.inputs.settings import TVL1Params

if sys.argv[1] == "shifted":  # trace other functions first: TensorFlow's names for ours change
  square = tf.function(lambda x: x * x)
  for n in range(1, 4):
    square(tf.zeros([n]))
fields = []
clips = [((24, 32), 3), ((32, 24), 5), ((24, 32), 9), ((32, 24), 2)]
for (h, w), frames in clips[:1] if sys.argv[1] == "torn" else clips:  # torn: one size suffices
  video = np.random.default_rng(h).integers(0, 256, (frames, h, w)).astype(np.uint8)
  fields.append(flow.compute_flow(video, "tf", TVL1Params(**{params})))
np.savez(sys.argv[2], *fields)
"""


def run_mixed_sizes(tmp_path, mode: str) -> tuple[str, list[np.ndarray]]:
  """A new process computing flow for 4 clips of 2 sizes: (its TensorFlow log, the fields)."""
  env = {**os.environ, "I3D_XLA_CACHE_DIR": str(tmp_path / "xla"), "PYTHONPATH": str(REPO),
         "TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_VMODULE": "device_executable_persistor=2"}
  out = tmp_path / f"{mode}.npz"
  code = MIXED_SIZES.format(params=SMALL.__dict__)
  log = subprocess.run([sys.executable, "-c", code, mode, str(out)], env=env, check=True,
                       capture_output=True, text=True).stderr
  with np.load(out) as fields:
    return log, [fields[name] for name in sorted(fields.files, key=lambda n: int(n[4:]))]


def test_one_compilation_per_size_none_in_a_second_process_and_torn_entries(tmp_path):
  first_log, first = run_mixed_sizes(tmp_path, "plain")
  assert first_log.count("XlaSerializedCacheEntry saved") == 2, first_log[-3000:]
  assert len(list((tmp_path / "xla").iterdir())) == 2
  second_log, second = run_mixed_sizes(tmp_path, "shifted")
  assert second_log.count("XlaSerializedCacheEntry saved") == 0, second_log[-3000:]
  assert second_log.count("Loading cached entry for: i3d_tvl1_") == 2, second_log[-3000:]
  assert len(list((tmp_path / "xla").iterdir())) == 2
  assert [f.shape for f in first] == [(2, 24, 32, 2), (4, 32, 24, 2), (8, 24, 32, 2),
                                      (1, 32, 24, 2)]
  for a, b in zip(first, second):
    np.testing.assert_array_equal(a, b)
  for entry in (tmp_path / "xla").iterdir():  # torn entries, as a killed writer leaves them
    entry.write_bytes(entry.read_bytes()[:1000])
  _, third = run_mixed_sizes(tmp_path, "torn")
  np.testing.assert_array_equal(third[0], first[0])


def test_single_pairs_on_threads_equal_batched_pairs():
  """Batches mask converged pairs; single pairs (the CPU default) stop instead: same flow."""
  rng = np.random.default_rng(5)
  first = rng.integers(0, 256, (5, 20, 28)).astype(np.uint8)
  second = np.roll(first, 1, axis=2)
  single = flow.flow_pairs(first, second, "tf", SMALL, batch=1)
  batched = flow.flow_pairs(first, second, "tf", SMALL, batch=4)
  assert np.abs(single).mean() > 0.1
  np.testing.assert_allclose(single, batched, atol=1e-4)

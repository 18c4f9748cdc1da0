"""Format-exact stand-ins for the released checkpoints, for tests and benchmarks.

The released data shards cannot be fetched offline, but their index files list every variable's
name, dtype and shape. `write_format_exact_checkpoint` writes a TF1-format checkpoint with exactly
those variables (optimizer slots included) filled with random values of sensible scale.
"""

import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf


def _random_value(name: str, shape: list[int], dtype: tf.DType, rng: np.random.Generator):
  """He-scaled conv weights, small offsets and means, variances near 1."""
  if dtype.is_integer:
    return np.array(rng.integers(0, 1000, size=shape), dtype=dtype.as_numpy_dtype)
  if name.endswith("moving_variance"):
    value = rng.uniform(0.5, 1.5, size=shape)
  elif name.endswith("/w"):
    fan_in = int(np.prod(shape[:-1]))
    value = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
  else:
    value = rng.normal(0.0, 0.1, size=shape)
  return value.astype(dtype.as_numpy_dtype)


def write_format_exact_checkpoint(index_prefix: str | Path, dest_dir: str | Path,
                                  seed: int = 0) -> Path:
  """Write `dest_dir/model.ckpt.{index,data-00000-of-00001}` like the one `index_prefix` lists.

  The released `checkpoint` state file (absolute paths of another machine) is copied along when
  it sits beside the index. Returns the new prefix.
  """
  reader = tf.train.load_checkpoint(str(index_prefix))
  shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
  rng = np.random.default_rng(seed)
  names = sorted(shapes)
  tensors = [tf.constant(_random_value(n, shapes[n], dtypes[n], rng)) for n in names]
  dest_dir = Path(dest_dir)
  dest_dir.mkdir(parents=True, exist_ok=True)
  prefix = dest_dir / "model.ckpt"
  tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=tensors)
  state = Path(index_prefix).parent / "checkpoint"
  if state.exists():
    shutil.copy(state, dest_dir / "checkpoint")
  return prefix

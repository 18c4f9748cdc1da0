"""Peak memory of classifying one clip, run by `bench.model` in a fresh process.

    python -m bench.memory EVAL_TYPE FRAMES CHECKPOINT_DIR

Prints one JSON line (MiB): resident memory once the model is loaded and the clip made, the
process's high-water mark after classifying it, their difference, and the activation memory the
network needs at least (the largest input + output of any one layer, float32).
"""

import json
import sys

import numpy as np
import tensorflow as tf

import i3d  # before tensorflow: i3d turns TensorFlow's oneDNN kernels on
from i3d.model.streams import STREAM_CHANNELS

MIB = 2 ** 20


def status_mib(field: str) -> float:
  """A memory field (VmRSS, VmHWM) of /proc/self/status in MiB."""
  with open("/proc/self/status") as status:
    line = next(l for l in status if l.startswith(field + ":"))
  return int(line.split()[1]) * 1024 / MIB


def min_activation_mib(model: i3d.InceptionI3d, clip_shape) -> float:
  """The largest input + output of one endpoint of `model` on a clip of `clip_shape`."""
  spec = tf.TensorSpec(clip_shape, tf.float32)
  _, endpoints = tf.function(lambda x: model(x, is_training=False)).get_concrete_function(
      spec).structured_outputs
  sizes = [np.prod(clip_shape)] + [np.prod(t.shape) for t in endpoints.values()]
  return 4 * max(a + b for a, b in zip(sizes, sizes[1:])) / MIB


def main(eval_type: str, frames: int, checkpoint_dir: str) -> None:
  clf = i3d.load_classifier(eval_type, checkpoint_dir=checkpoint_dir, download=False)
  clips = {s: np.random.default_rng(0).uniform(-1, 1, (1, frames, 224, 224, STREAM_CHANNELS[s]))
           .astype(np.float32) for s in clf.streams}
  loaded = status_mib("VmRSS")
  clf(**clips).numpy()
  peak = status_mib("VmHWM")
  needed = max(min_activation_mib(clf.models[s], x.shape) for s, x in clips.items())
  print(json.dumps({"loaded_rss_mib": round(loaded), "peak_rss_mib": round(peak),
                    "peak_minus_loaded_mib": round(peak - loaded),
                    "min_activations_mib": round(needed)}))


if __name__ == "__main__":
  main(sys.argv[1], int(sys.argv[2]), sys.argv[3])

"""Classifies a sample clip with released I3D checkpoints and prints the top classes.

    python evaluate_sample.py --eval_type joint

Prints the released script's format: the norm of the logits, then one
`probability logit label` line per top class. Joint sums the RGB and flow logits.
"""

import sys

import numpy as np
from absl import app, flags

import i3d
from i3d.errors import UserError
from i3d.samples import DEFAULT_SAMPLES, load_sample

FLAGS = flags.FLAGS
flags.DEFINE_enum("eval_type", "joint", list(i3d.EVAL_TYPES), "rgb, rgb600, flow, or joint.")
flags.DEFINE_boolean("imagenet_pretrained", True,
                     "Use the ImageNet+Kinetics checkpoints (rgb600 is always Kinetics-600).")
flags.DEFINE_string("checkpoint_dir", None,
                    "Folder with NAME/model.ckpt.*; default $I3D_CHECKPOINT_DIR or checkpoints/.")
flags.DEFINE_string("rgb_sample", str(DEFAULT_SAMPLES["rgb"]),
                    "RGB input: .npy (1, T, 224, 224, 3) in [-1, 1], or a released-style .gif.")
flags.DEFINE_string("flow_sample", str(DEFAULT_SAMPLES["flow"]),
                    "Flow input: .npy (1, T, 224, 224, 2) in [-1, 1], or a released-style .gif.")
flags.DEFINE_integer("top_k", 20, "How many classes to print.")


def report(logits: np.ndarray, labels: tuple[str, ...], top_k: int) -> str:
  """The released output: norm of the logits, then `probability logit label` per top class."""
  logits = logits.astype(np.float32)
  shifted = np.exp(logits - logits.max())
  probabilities = shifted / shifted.sum()
  lines = [f"Norm of logits: {np.linalg.norm(logits):f}", "", "Top classes and probabilities"]
  for index in np.argsort(probabilities)[::-1][:top_k]:
    lines.append(f"{probabilities[index]} {logits[index]} {labels[index]}")
  return "\n".join(lines)


def main(argv):
  del argv
  try:
    samples = {"rgb": FLAGS.rgb_sample, "flow": FLAGS.flow_sample}
    streams = i3d.checkpoint_names(FLAGS.eval_type, FLAGS.imagenet_pretrained)
    inputs = {s: load_sample(samples[s], s) for s in streams}  # bad input fails fast
    classifier = i3d.load_classifier(FLAGS.eval_type, checkpoint_dir=FLAGS.checkpoint_dir,
                                     imagenet_pretrained=FLAGS.imagenet_pretrained)
    logits = classifier(**inputs).numpy()[0]
  except (UserError, ValueError) as e:
    print(f"evaluate_sample.py: error: {e}", file=sys.stderr)
    sys.exit(1)
  print(report(logits, classifier.labels, FLAGS.top_k))


if __name__ == "__main__":
  app.run(main)

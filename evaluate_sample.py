"""Classifies a sample clip with I3D checkpoints and prints the top classes.

    python evaluate_sample.py --eval_type joint
    python evaluate_sample.py --video clip.mp4 --eval_type joint   # any video file

Prints the released script's format: the norm of the logits, then one
`probability logit label` line per top class. Joint sums the RGB and flow logits.
"""

import sys
from pathlib import Path

from i3d._util import env, progress

env.set_library_defaults()  # a quiet TensorFlow start: before anything imports TensorFlow

import numpy as np
from absl import app, flags

import i3d
from i3d.classify import predict, ranking
from i3d.errors import UserError
from i3d.inputs import decode, settings, views
from i3d.inputs.samples import default_sample, load_sample
from i3d.model.checkpoints import fetch_checkpoints
from i3d.model.hardware import PRECISIONS

FLAGS = flags.FLAGS
flags.DEFINE_enum("eval_type", "joint", list(i3d.EVAL_TYPES), "rgb, rgb600, flow, or joint.")
flags.DEFINE_boolean("imagenet_pretrained", True,
                     "Use the ImageNet+Kinetics checkpoints (rgb600 is always Kinetics-600).")
flags.DEFINE_string("checkpoint_dir", None,
                    "Folder with NAME/model.ckpt.*; default $I3D_CHECKPOINT_DIR, else "
                    "~/.cache/i3d/checkpoints.")
flags.DEFINE_string("rgb_checkpoint", None,
                    "RGB tower's checkpoint instead of the one --eval_type picks: a name "
                    "(e.g. rgb_tfhub, the TF-Hub Kinetics-400 model) or a checkpoint path.")
flags.DEFINE_string("flow_checkpoint", None,
                    "Flow tower's checkpoint instead of the one --eval_type picks: a name or a "
                    "checkpoint path.")
flags.DEFINE_string("rgb_sample", str(default_sample("rgb")),
                    "RGB input: .npy (1, T, 224, 224, 3) in [-1, 1], or a released-style .gif.")
flags.DEFINE_string("flow_sample", str(default_sample("flow")),
                    "Flow input: .npy (1, T, 224, 224, 2) in [-1, 1], or a released-style .gif.")
flags.DEFINE_enum("precision", "float32", list(PRECISIONS),
                  "Compute precision of the convolutions: float32, or bfloat16 / float16 on CPUs "
                  "and GPUs that have them (inputs and logits stay float32).")
flags.DEFINE_integer("top_k", 20, "How many classes to print.")
flags.DEFINE_string("video", None,
                    "Classify this video file instead of the samples: decoded at 25 fps, RGB and "
                    "TV-L1 flow computed (or reused from VIDEO_inputs.npz made with the same "
                    "settings).")
flags.DEFINE_float("time_start", None, "With --video: start of the trim window in seconds.")
flags.DEFINE_float("time_end", None, "With --video: end of the trim window in seconds.")
flags.DEFINE_enum("flow_backend", "tf", list(settings.FLOW_BACKENDS),
                  "With --video: TV-L1 implementation, ours in TensorFlow or OpenCV's DualTVL1.")
flags.DEFINE_boolean("quiet", False, "No progress bars or notes on stderr (as I3D_PROGRESS=0).")
flags.DEFINE_boolean("offline", False,
                     "Never use the network (as I3D_OFFLINE=1): missing checkpoints are an "
                     "error saying where to put them.")


def report(logits: np.ndarray, labels: tuple[str, ...], top_k: int) -> str:
  """The released output: norm of the logits, then `probability logit label` per top class."""
  logits = logits.astype(np.float32)
  probabilities = ranking.softmax(logits)
  lines = [f"Norm of logits: {np.linalg.norm(logits):f}", "", "Top classes and probabilities"]
  for index in ranking.top_k(logits, top_k):  # str(): NumPy's shortest float32 repr, as released
    lines.append(f"{probabilities[index]!s} {logits[index]!s} {labels[index]}")
  return "\n".join(lines)


def _video_logits(classifier) -> np.ndarray:
  """The summed logits of --video (trim and flow flags): streamed, the whole clip in chunks of
  `$I3D_CHUNK_FRAMES` frames when longer (the same logits), so any length fits in memory."""
  chosen = settings.InputSettings(time_start=FLAGS.time_start, time_end=FLAGS.time_end,
                                  flow_backend=FLAGS.flow_backend)
  return ranking.fuse(predict.video_logits(classifier, FLAGS.video, chosen)[0])


def main(argv):
  del argv
  if FLAGS.quiet:
    progress.set_enabled(False)
  try:
    if FLAGS.top_k < 1:
      raise UserError(f"--top_k must be at least 1, got {FLAGS.top_k}")
    samples = {"rgb": FLAGS.rgb_sample, "flow": FLAGS.flow_sample}
    streams = i3d.choose_checkpoints(FLAGS.eval_type, FLAGS.imagenet_pretrained,
                                     FLAGS.rgb_checkpoint, FLAGS.flow_checkpoint)
    fetch_checkpoints(streams.values(), FLAGS.checkpoint_dir,  # all missing ones named at once
                      download=not FLAGS.offline, eval_type=FLAGS.eval_type)
    if FLAGS.video:  # a missing or unreadable video fails before the model loads
      decode.open_video(Path(FLAGS.video)).release()
    clips = {} if FLAGS.video else {  # bad input fails fast
        s: views.temporal_views(load_sample(samples[s], s), views.ViewProtocol()) for s in streams}
    classifier = i3d.load_classifier(FLAGS.eval_type, checkpoint_dir=FLAGS.checkpoint_dir,
                                     imagenet_pretrained=FLAGS.imagenet_pretrained,
                                     precision=FLAGS.precision, download=not FLAGS.offline,
                                     rgb_checkpoint=FLAGS.rgb_checkpoint,
                                     flow_checkpoint=FLAGS.flow_checkpoint)
    logits = _video_logits(classifier) if FLAGS.video else classifier(**clips).numpy()[0]
  except (UserError, ValueError, OSError) as e:
    print(f"evaluate_sample.py: error: {e}", file=sys.stderr)
    sys.exit(1)
  print(report(logits, classifier.labels, FLAGS.top_k))


if __name__ == "__main__":
  app.run(main)

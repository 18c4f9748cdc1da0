"""Flags shared by several subcommands, so each means the same everywhere (not a subcommand)."""

import argparse

from i3d import flow, inputs
from i3d.classifier import EVAL_TYPES, Classifier, load_classifier


def add_classifier_flags(parser: argparse.ArgumentParser) -> None:
  """--eval_type, --checkpoint_dir and --imagenet_pretrained, as evaluate_sample.py has them."""
  parser.add_argument("--eval_type", choices=EVAL_TYPES, default="joint",
                      help="streams and checkpoints: rgb, rgb600, flow or joint (default)")
  parser.add_argument("--checkpoint_dir", default=None,
                      help="folder with NAME/model.ckpt.*; default $I3D_CHECKPOINT_DIR or "
                           "checkpoints/ (missing checkpoints are downloaded there)")
  parser.add_argument("--imagenet_pretrained", default=True,
                      action=argparse.BooleanOptionalAction,
                      help="ImageNet+Kinetics checkpoints (default) or, with "
                           "--no-imagenet_pretrained, the Kinetics-only ones")
  parser.add_argument("--noimagenet_pretrained", dest="imagenet_pretrained",
                      action="store_false", help=argparse.SUPPRESS)  # absl's spelling


def classifier(args: argparse.Namespace) -> Classifier:
  """The classifier the classifier flags name."""
  return load_classifier(args.eval_type, checkpoint_dir=args.checkpoint_dir,
                         imagenet_pretrained=args.imagenet_pretrained)


def add_input_flags(parser: argparse.ArgumentParser, trim: bool = True) -> None:
  """The flags of commands that read videos: the trim window and the flow backend."""
  if trim:
    parser.add_argument("--time_start", type=float, default=None,
                        help="start of the trim window in seconds (default: start of the video)")
    parser.add_argument("--time_end", type=float, default=None,
                        help="end of the trim window in seconds (default: end of the video)")
  parser.add_argument("--flow_backend", choices=flow.BACKENDS, default="tf",
                      help="TV-L1 implementation: our TensorFlow one (GPU when present) or "
                           "OpenCV's DualTVL1 (the reference)")


def input_settings(args: argparse.Namespace) -> inputs.InputSettings:
  """The `InputSettings` named by the input flags."""
  return inputs.InputSettings(time_start=getattr(args, "time_start", None),
                              time_end=getattr(args, "time_end", None),
                              flow_backend=args.flow_backend)

"""One set of flags per concept, shared by every subcommand that needs it (same spelling and
meaning everywhere), and the objects they name. Importing this module loads no TensorFlow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from i3d import kinetics
from i3d.inputs.settings import FLOW_BACKENDS, InputSettings
from i3d.model.streams import EVAL_TYPES, MIN_FRAMES

if TYPE_CHECKING:
  from i3d.classify.classifier import Classifier
  from i3d.inputs.views import Protocol


def add_classifier_flags(parser: argparse.ArgumentParser) -> None:
  """--eval_type, --checkpoint_dir and --imagenet_pretrained, as evaluate_sample.py has them."""
  parser.add_argument("--eval_type", choices=EVAL_TYPES, default="joint",
                      help="streams and checkpoints: rgb, rgb600, flow or joint (default)")
  add_checkpoint_flag(parser)
  parser.add_argument("--imagenet_pretrained", default=True,
                      action=argparse.BooleanOptionalAction,
                      help="ImageNet+Kinetics checkpoints (default) or, with "
                           "--no-imagenet_pretrained, the Kinetics-only ones")
  parser.add_argument("--noimagenet_pretrained", dest="imagenet_pretrained",
                      action="store_false", help=argparse.SUPPRESS)  # absl's spelling


def add_checkpoint_flag(parser: argparse.ArgumentParser) -> None:
  """--checkpoint_dir, for every command that loads released weights."""
  parser.add_argument("--checkpoint_dir", default=None,
                      help="folder with NAME/model.ckpt.*; default $I3D_CHECKPOINT_DIR or "
                           "checkpoints/ (missing checkpoints are downloaded there)")


def classifier(args: argparse.Namespace) -> Classifier:
  """The classifier the classifier flags name."""
  from i3d.classify.classifier import load_classifier  # pylint: disable=import-outside-toplevel
  return load_classifier(args.eval_type, checkpoint_dir=args.checkpoint_dir,
                         imagenet_pretrained=args.imagenet_pretrained)


def add_input_flags(parser: argparse.ArgumentParser, trim: bool = True) -> None:
  """The flags of commands that read videos: the trim window and the flow backend."""
  if trim:
    parser.add_argument("--time_start", type=float, default=None,
                        help="start of the trim window in seconds (default: start of the video)")
    parser.add_argument("--time_end", type=float, default=None,
                        help="end of the trim window in seconds (default: end of the video)")
  parser.add_argument("--flow_backend", choices=FLOW_BACKENDS, default=None,
                      help="TV-L1 implementation: our TensorFlow one (default; GPU when present) "
                           "or OpenCV's DualTVL1 (the reference)")


def input_settings(args: argparse.Namespace) -> InputSettings:
  """The `InputSettings` named by the input flags."""
  return InputSettings(time_start=getattr(args, "time_start", None),
                       time_end=getattr(args, "time_end", None),
                       flow_backend=args.flow_backend or FLOW_BACKENDS[0])


def add_view_flags(parser: argparse.ArgumentParser) -> None:
  """Test-time views (windows x crops), their batching, and the inputs cache."""
  parser.add_argument("--windows", type=int, default=0,
                      help="multi-view testing: average the logits of N evenly spaced windows "
                           "(default 0: the whole clip at once, as released)")
  parser.add_argument("--window_frames", type=int, default=64,
                      help=f"frames per window with --windows (default 64, at least "
                           f"{MIN_FRAMES})")
  parser.add_argument("--crops", type=int, choices=(1, 3), default=1,
                      help="spatial crops per view: 1 centre (default, as released) or 3 along "
                           "the long side")
  parser.add_argument("--view_batch", type=int, default=4,
                      help="views per model call (default 4); lower it if memory runs short")
  add_cache_flag(parser)


def add_cache_flag(parser: argparse.ArgumentParser) -> None:
  """--no_cache: compute inputs even where `i3d preprocess` left a matching cache."""
  parser.add_argument("--no_cache", dest="use_cache", action="store_false",
                      help="ignore VIDEO_inputs.npz caches made by `i3d preprocess`")


def protocol(args: argparse.Namespace) -> Protocol:
  """The test-time `Protocol` named by the view flags."""
  from i3d.inputs.views import Protocol  # pylint: disable=import-outside-toplevel
  return Protocol(args.windows, args.window_frames, args.crops)


def add_annotation_flags(parser: argparse.ArgumentParser, required: bool = True,
                         remote: bool = False) -> None:
  """Annotated Kinetics clips: --annotations, --video_dir and which of them (--split,
  --classes, --max_samples). With `remote`, --video_dir stays a string (gs://... for Beam)."""
  parser.add_argument("--annotations", type=Path, required=required,
                      help="Official Kinetics CSV or JSON annotations.")
  parser.add_argument("--video_dir", type=str if remote else Path, required=required,
                      help="Clips named {youtube_id}_{start:06d}_{end:06d}.mp4, anywhere below"
                           + (" (with --runner also gs://... or any filesystem tf.io.gfile "
                              "reads)." if remote else "."))
  parser.add_argument("--split", default="validation", help="Split of the annotations to use.")
  parser.add_argument("--classes", default=None, help="Comma-separated class names to keep.")
  parser.add_argument("--max_samples", type=int, default=None, help="At most this many clips.")


def annotated_clips(args: argparse.Namespace) -> list[kinetics.Clip]:
  """The annotated clips of --split, restricted to --classes and --max_samples."""
  parsed = kinetics.read_annotations(args.annotations)
  if parsed.problems:
    print(f"{args.annotations}: {len(parsed.problems)} malformed rows skipped (first: line "
          f"{parsed.problems[0].line}: {parsed.problems[0].reason})", file=sys.stderr)
  names = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
  version = getattr(args, "version", None) or (600 if args.eval_type == "rgb600" else 400)
  classes = kinetics.check_classes(names, version) if names else None
  return kinetics.select(parsed.clips, splits=[args.split], classes=classes,
                         max_samples=args.max_samples)


def add_runner_flags(parser: argparse.ArgumentParser) -> None:
  """--runner: run the command as an Apache Beam pipeline; Beam's own flags pass through."""
  parser.add_argument("--runner", default=None,
                      help="run as an Apache Beam pipeline on this runner: DirectRunner (this "
                           "machine, --workers processes), DataflowRunner, FlinkRunner, "
                           "SparkRunner, ...; flags this command does not know are Beam's "
                           "pipeline options (--project, --region, --temp_location, "
                           "--flink_master, ...). Default: one process, no Beam")
  parser.set_defaults(beam_args=[])
  parser.allow_abbrev = False  # a Beam flag must never be taken for an abbreviated one of ours

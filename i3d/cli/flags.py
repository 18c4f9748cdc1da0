"""One set of flags per concept, shared by every subcommand that needs it (same spelling and
meaning everywhere), and the objects they name. Importing this module loads no TensorFlow."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from i3d import kinetics
from i3d._util import text
from i3d.inputs.settings import FLOW_BACKENDS, InputSettings
from i3d.model.hardware import PRECISIONS
from i3d.model.registry import CHECKPOINTS
from i3d.model.streams import EVAL_TYPES, MIN_FRAMES, choose_checkpoints

if TYPE_CHECKING:
  from i3d.classify.classifier import Classifier
  from i3d.inputs.views import ViewProtocol


def config(cls: Any, args: argparse.Namespace, **given: Any) -> Any:
  """The dataclass `cls` of the flags named as its fields, and of the fields `given`."""
  flagged = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
             if f.name not in given and hasattr(args, f.name)}
  return cls(**flagged, **given)


def add_classifier_flags(parser: argparse.ArgumentParser) -> None:
  """--eval_type, --checkpoint_dir, --[no]imagenet_pretrained and --precision, as
  evaluate_sample.py has them (absl's spelling of the negation; `--no-imagenet_pretrained` is
  accepted too)."""
  parser.add_argument("--eval_type", choices=EVAL_TYPES, default="joint",
                      help="streams and checkpoints: rgb, rgb600, flow or joint")
  parser.add_argument("--checkpoint", default=None, metavar="PATH",
                      help="a training run folder (`i3d train --output_dir`) or checkpoint for "
                           "every stream it has, with its own labels.txt (--eval_type joint: all "
                           "its streams; rgb or flow: that one)")
  add_checkpoint_flag(parser)
  parser.add_argument("--imagenet_pretrained", default=True, action="store_true",
                      help="ImageNet+Kinetics checkpoints (default); --noimagenet_pretrained "
                           "uses the Kinetics-only ones")
  for spelling in ("--noimagenet_pretrained", "--no-imagenet_pretrained"):
    parser.add_argument(spelling, dest="imagenet_pretrained", action="store_false",
                        help=argparse.SUPPRESS if "-i" in spelling else "Kinetics-only checkpoints")
  parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                      help="compute precision of the convolutions (inputs and logits stay "
                           "float32): float32 (default), or bfloat16 / float16 on CPUs and GPUs "
                           "that have them (a warning says when they would be emulated)")
  add_stream_checkpoint_flags(parser)


def add_stream_checkpoint_flags(parser: argparse.ArgumentParser, streams=("rgb", "flow"),
                                default: str | None = None) -> None:
  """--rgb_checkpoint / --flow_checkpoint: a tower's checkpoint, over what --eval_type picks."""
  for stream in streams:
    parser.add_argument(f"--{stream}_checkpoint", default=default, metavar="NAME|PATH",
                        help=f"the {stream} tower's checkpoint"
                             + (f" (default: {default})" if default else
                                ", instead of the one --eval_type and --imagenet_pretrained pick")
                             + f": a name ({', '.join(n for n in CHECKPOINTS if stream in n)}) "
                               f"or a checkpoint prefix or folder")


def resolve_checkpoints(args: argparse.Namespace) -> None:
  """Rewrites the classifier flags so that --checkpoint and training run folders name each
  tower's checkpoint: --eval_type becomes the streams found, --rgb_checkpoint /
  --flow_checkpoint their checkpoints (`i3d.model.checkpoints.choose`)."""
  if getattr(args, "checkpoint", None) is None and not any(
      getattr(args, f"{s}_checkpoint", None) for s in ("rgb", "flow")):
    return
  from i3d.model import checkpoints as found  # pylint: disable=import-outside-toplevel
  args.eval_type, names = found.choose(args.eval_type, args.imagenet_pretrained,
                                       args.rgb_checkpoint, args.flow_checkpoint,
                                       getattr(args, "checkpoint", None))
  args.checkpoint = None
  args.rgb_checkpoint, args.flow_checkpoint = names.get("rgb"), names.get("flow")


def checkpoints(args: argparse.Namespace) -> dict[str, str]:
  """Checkpoint per stream named by the classifier flags."""
  resolve_checkpoints(args)
  return choose_checkpoints(args.eval_type, args.imagenet_pretrained, args.rgb_checkpoint,
                            args.flow_checkpoint)


def add_run_flags(parser: argparse.ArgumentParser, offline: bool = True) -> None:
  """--quiet (no progress output) and, for commands that may download, --offline."""
  parser.add_argument("--quiet", action="store_true",
                      help="no progress bars or notes on stderr (as I3D_PROGRESS=0; they are "
                           "shown only on a terminal anyway)")
  parser.add_argument("--no_progress", dest="quiet", action="store_true",
                      help=argparse.SUPPRESS)  # the spelling before --quiet
  if offline:
    parser.add_argument("--offline", action="store_true",
                        help="never use the network (as I3D_OFFLINE=1): a missing checkpoint "
                             "or annotation file is an error saying where to put it")


def add_checkpoint_flag(parser: argparse.ArgumentParser) -> None:
  """--checkpoint_dir, for every command that loads released weights."""
  parser.add_argument("--checkpoint_dir", default=None,
                      help="folder with NAME/model.ckpt.* (default: $I3D_CHECKPOINT_DIR, "
                           "else ~/.cache/i3d/checkpoints; missing checkpoints are downloaded "
                           "there)")


def classifier(args: argparse.Namespace) -> Classifier:
  """The classifier the classifier flags name."""
  from i3d.classify.classifier import load_classifier  # pylint: disable=import-outside-toplevel
  resolve_checkpoints(args)
  return load_classifier(args.eval_type, checkpoint_dir=args.checkpoint_dir,
                         imagenet_pretrained=args.imagenet_pretrained, precision=args.precision,
                         rgb_checkpoint=args.rgb_checkpoint, flow_checkpoint=args.flow_checkpoint,
                         download=not getattr(args, "offline", False))


def add_input_flags(parser: argparse.ArgumentParser, trim: bool = True) -> None:
  """The flags of commands that read videos: the trim window and the flow backend."""
  for edge in ("start", "end") if trim else ():
    parser.add_argument(f"--time_{edge}", type=float, default=None,
                        help=f"{edge} of the trim window in seconds (default: the video's {edge})")
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
                           "(0: the whole clip at once, as released)")
  parser.add_argument("--window_frames", type=int, default=64,
                      help=f"frames per window with --windows (at least {MIN_FRAMES})")
  parser.add_argument("--crops", type=int, choices=(1, 3), default=1,
                      help="spatial crops per view: 1 centre (as released) or 3 along the "
                           "long side")
  parser.add_argument("--view_batch", type=int, default=4,
                      help="views per model call; lower it if memory runs short")
  add_cache_flag(parser)


def add_cache_flag(parser: argparse.ArgumentParser) -> None:
  """--no_cache: compute inputs even where `i3d preprocess` left a matching cache."""
  parser.add_argument("--no_cache", dest="use_cache", action="store_false",
                      help="ignore VIDEO_inputs.npz caches made by `i3d preprocess`")


def protocol(args: argparse.Namespace) -> ViewProtocol:
  """The test-time `ViewProtocol` named by the view flags."""
  from i3d.inputs.views import ViewProtocol  # pylint: disable=import-outside-toplevel
  return ViewProtocol(args.windows, args.window_frames, args.crops)


def add_annotation_flags(parser: argparse.ArgumentParser, required: bool = True,
                         remote: bool = False) -> None:
  """Annotated Kinetics clips: --annotations, --video_dir and which of them (--split,
  --classes, --max_samples). With `remote`, --video_dir stays a string (gs://... for Beam)."""
  parser.add_argument("--annotations", type=Path, required=required,
                      help="official Kinetics CSV or JSON annotations")
  parser.add_argument("--video_dir", type=str if remote else Path, required=required,
                      help="clips named {youtube_id}_{start:06d}_{end:06d}.mp4, anywhere below"
                           + (" (with --runner also gs://... or any filesystem tf.io.gfile "
                              "reads)" if remote else ""))
  parser.add_argument("--split", default=None,
                      help="split of the annotations to use (default: validation); for a "
                           "--dataset CSV, the rows whose third column is this (default: all)")
  parser.add_argument("--classes", default=None,
                      help="comma-separated class names to keep (default: all)")
  parser.add_argument("--max_samples", type=int, default=None,
                      help="at most this many clips (default: all)")


def annotated_clips(args: argparse.Namespace) -> list[kinetics.Clip]:
  """The annotated clips of --split, restricted to --classes and --max_samples."""
  parsed = kinetics.read_annotations(args.annotations)
  clips = kinetics.usable(parsed, args.annotations)
  print_problems(args.annotations, parsed.problems)
  names = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
  version = getattr(args, "version", None) or (600 if args.eval_type == "rgb600" else 400)
  classes = kinetics.check_classes(names, version) if names else None
  return kinetics.select(clips, splits=[args.split or "validation"], classes=classes,
                         max_samples=args.max_samples)


def add_runner_flags(parser: argparse.ArgumentParser) -> None:
  """--runner: run the command as an Apache Beam pipeline; Beam's own flags pass through."""
  parser.add_argument("--runner", default=None,
                      help="run as an Apache Beam pipeline on this runner: DirectRunner (this "
                           "machine, --workers processes), DataflowRunner, FlinkRunner, "
                           "SparkRunner, ...; flags this command does not know are Beam's "
                           "pipeline options (--project, --region, --temp_location, "
                           "--flink_master, ...) (default: one process, no Beam)")
  parser.set_defaults(beam_args=[])
  parser.allow_abbrev = False  # a Beam flag must never be taken for an abbreviated one of ours


def print_problems(path: Path, problems: list[kinetics.Problem], shown: int = 10) -> None:
  """Tells the user about malformed annotation rows, with line numbers (or, for a problem of a
  file rather than a row, line 0, the file's name)."""
  if problems:
    print(f"{path}: {text.count(len(problems), 'malformed row')} skipped:", file=sys.stderr)
  for p in problems[:shown]:
    print(f"  {f'line {p.line}' if p.line else p.text}: {p.reason}", file=sys.stderr)
  if len(problems) > shown:
    print(f"  ... and {len(problems) - shown} more", file=sys.stderr)

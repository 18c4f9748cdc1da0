"""`i3d predict`: top Kinetics classes for each video, as text or JSON."""

import argparse
import json
import sys

from i3d import predict
from i3d.commands import _flags
from i3d.errors import UserError


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "predict", help="top Kinetics classes for videos",
      description="Classify each video (or inputs .npz from `i3d preprocess`) with the released "
                  "I3D checkpoints. A bad video is reported and the others still run; the exit "
                  "status is 1 when any failed.")
  parser.add_argument("videos", nargs="+", help="video files or inputs .npz files")
  parser.add_argument("--top_k", type=int, default=5, help="classes per video (default 5)")
  parser.add_argument("--json", action="store_true", help="print one JSON document")
  _flags.add_classifier_flags(parser)
  parser.add_argument("--windows", type=int, default=0,
                      help="average the logits of N uniformly spaced windows (default: the "
                           "whole clip at once)")
  parser.add_argument("--window_frames", type=int, default=64,
                      help="frames per window with --windows (default 64)")
  parser.add_argument("--no_cache", dest="use_cache", action="store_false",
                      help="ignore VIDEO_inputs.npz caches beside the videos")
  _flags.add_input_flags(parser)
  parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
  if args.top_k < 1 or args.windows < 0 or args.window_frames < 1:
    raise UserError("--top_k and --window_frames must be at least 1, --windows at least 0")
  classifier = _flags.classifier(args)
  settings = _flags.input_settings(args)
  results, failed = [], 0
  for source in args.videos:
    try:
      result = predict.predict(classifier, source, settings, args.top_k, args.windows,
                               args.window_frames, args.use_cache).as_dict()
    except UserError as e:
      failed += 1
      result = {"video": source, "error": str(e)}
      if not args.json:
        print(f"i3d predict: error: {e}", file=sys.stderr)
    results.append(result)
    if not args.json and "error" not in result:
      print(_text(result))
  if args.json:
    print(json.dumps(results, indent=2))
  return 1 if failed else 0


def _text(result: dict) -> str:
  """One video's block: its name, then `probability  label` per class."""
  lines = [f"{result['video']} ({result['frames']} frames)"]
  lines += [f"  {c['probability']:.4f}  {c['label']}" for c in result["top_k"]]
  return "\n".join(lines)

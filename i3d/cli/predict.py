"""`i3d predict`: top Kinetics classes for each video, as text or JSON."""

import argparse
import json
import sys
from collections.abc import Iterator

from i3d.cli import flags
from i3d.errors import UserError


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "predict", help="top Kinetics classes for videos",
      description="Classify each video (or inputs .npz from `i3d preprocess`) with the released "
                  "I3D checkpoints. A bad video is reported and the others still run; the exit "
                  "status is 1 when any failed.")
  parser.add_argument("videos", nargs="+",
                      help="video files, inputs .npz files, or records (a NAME-*-of-*.tfrecord "
                           "shard or a folder of them from `i3d preprocess --output_dir`)")
  parser.add_argument("--top_k", type=int, default=5, help="classes per video (default 5)")
  parser.add_argument("--json", action="store_true", help="print one JSON document")
  flags.add_classifier_flags(parser)
  flags.add_view_flags(parser)
  flags.add_input_flags(parser)
  parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
  from i3d.classify import predict  # pylint: disable=import-outside-toplevel
  if args.top_k < 1:
    raise UserError("--top_k must be at least 1")
  protocol = flags.protocol(args)
  classifier = flags.classifier(args)
  settings = flags.input_settings(args)
  results, failed = [], 0
  for source in args.videos:
    for result in _predictions(predict, classifier, source, settings, protocol, args):
      results.append(result)
      if "error" in result:
        failed += 1
        if not args.json:
          print(f"i3d predict: error: {result['error']}", file=sys.stderr)
      elif not args.json:
        print(_text(result))
  if args.json:
    print(json.dumps(results, indent=2))
  return 1 if failed else 0


def _predictions(predict, classifier, source: str, settings, protocol,
                 args: argparse.Namespace) -> Iterator[dict]:
  """The result dicts of one command-line source: a video, an inputs .npz, or records (a shard or
  a folder of shards, one result per clip)."""
  try:
    if predict.is_records(source):
      for item in predict.predict_records(classifier, source, protocol, args.top_k,
                                          args.view_batch):
        yield {"video": source, "error": item} if isinstance(item, str) else item.as_dict()
      return
    yield predict.predict(classifier, source, settings, protocol, args.top_k, args.use_cache,
                          args.view_batch).as_dict()
  except UserError as e:
    yield {"video": source, "error": str(e)}


def _text(result: dict) -> str:
  """One video's block: its name, then `probability  label` per class."""
  lines = [f"{result['video']} ({result['frames']} frames)"]
  lines += [f"  {c['probability']:.4f}  {c['label']}" for c in result["top_k"]]
  return "\n".join(lines)

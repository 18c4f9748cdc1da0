"""`i3d predict`: top Kinetics classes for each video, as text, JSON or CSV."""

import argparse
import csv
import json
import sys
from collections.abc import Iterator

from i3d.cli import flags
from i3d.errors import UserError


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "predict", help="top Kinetics classes of videos",
      description="Classify each video (or inputs .npz from `i3d preprocess`) with the released "
                  "I3D checkpoints. A bad video is reported and the others still run; the exit "
                  "status is 1 when any failed.")
  parser.add_argument("videos", nargs="+",
                      help="video files, inputs .npz files, or records (a NAME-*-of-*.tfrecord "
                           "shard or a folder of them from `i3d preprocess --output_dir`)")
  parser.add_argument("--top_k", type=int, default=5, help="classes per video")
  output = parser.add_mutually_exclusive_group()
  output.add_argument("--json", action="store_true", help="print one JSON document")
  output.add_argument("--csv", action="store_true",
                      help="print CSV: one row per video with its path, frames, then class_1, "
                           "score_1, ... class_K, score_K (and error, for videos that failed)")
  flags.add_classifier_flags(parser)
  flags.add_view_flags(parser)
  flags.add_input_flags(parser)
  flags.add_run_flags(parser)


def main(args: argparse.Namespace) -> int:
  from i3d.classify import predict  # pylint: disable=import-outside-toplevel
  if args.top_k < 1 or args.view_batch < 1:
    raise UserError(f"--top_k and --view_batch must be at least 1, got {args.top_k} and "
                    f"{args.view_batch}")
  protocol = flags.protocol(args)
  classifier = flags.classifier(args)
  settings = flags.input_settings(args)
  results, failed = [], 0
  table = _csv_writer(args.top_k) if args.csv else None
  for source in args.videos:
    for result in _predictions(predict, classifier, source, settings, protocol, args):
      results.append(result)
      if "error" in result:
        failed += 1
        if not args.json:
          print(f"i3d predict: error: {result['error']}", file=sys.stderr)
      if table is not None:
        table(result)
      elif not args.json and "error" not in result:
        print(_text(result), flush=True)
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
  """One video's block: its name and frames (`79 frames`, or `5 frames, looped to 9` when the clip
  was shorter than the model's input), then `probability  label` per class."""
  looped = f", looped to {result['looped_to']}" if result.get("looped_to") else ""
  lines = [f"{result['video']} ({result['frames']} frames{looped})"]
  lines += [f"  {c['probability']:.4f}  {c['label']}" for c in result["top_k"]]
  return "\n".join(lines)


def _csv_writer(top_k: int):
  """Writes the CSV header now; returns a function writing one result's row (flushed)."""
  writer = csv.writer(sys.stdout, lineterminator="\n")
  ranks = range(1, top_k + 1)
  writer.writerow(["video", "frames", *[f"{kind}_{r}" for r in ranks for kind in ("class",
                                                                                  "score")],
                   "error"])

  def write(result: dict) -> None:
    cells = [(c["label"], f"{c['probability']:.6f}") for c in result.get("top_k", [])]
    cells += [("", "")] * (top_k - len(cells))
    writer.writerow([result["video"], result.get("frames", ""),
                     *[v for pair in cells for v in pair], result.get("error", "")])
    sys.stdout.flush()

  return write

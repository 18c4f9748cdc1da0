"""`i3d evaluate`: score a classifier on annotated Kinetics clips; resumable, with reports."""

import argparse
from pathlib import Path

from i3d import kinetics
from i3d.cli import flags
from i3d.cli.kinetics import print_problems


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "evaluate", help="top-k accuracy of a classifier over a Kinetics split (resumable)",
      description="Classify every annotated clip found under --video_dir, append each result to "
                  "OUTPUT_DIR/predictions.jsonl, and write metrics.json, an ActivityNet-format "
                  "results file, summary.md and plots. Run it again to resume.")
  parser.add_argument("--annotations", type=Path, required=True,
                      help="official Kinetics CSV or JSON annotations")
  parser.add_argument("--video_dir", type=Path, required=True,
                      help="clips named {youtube_id}_{start:06d}_{end:06d}.mp4, anywhere below")
  parser.add_argument("--output_dir", type=Path, required=True, help="where results go")
  flags.add_classifier_flags(parser)
  parser.add_argument("--split", default="validation", help="split of the annotations to score")
  parser.add_argument("--classes", default=None,
                      help="comma-separated class names to keep (default: all)")
  parser.add_argument("--max_samples", type=int, default=None,
                      help="at most this many clips (default: all)")
  flags.add_view_flags(parser)
  flags.add_input_flags(parser, trim=False)
  parser.add_argument("--top_k", type=int, default=5, help="classes kept per video (>= 5)")
  parser.add_argument("--save_logits", action="store_true",
                      help="also store every stream's logits in predictions.jsonl")
  parser.add_argument("--workers", type=int, default=2, help="videos decoded in parallel")
  flags.add_run_flags(parser)
  parser.add_argument("--no_progress", dest="quiet", action="store_true",
                      help=argparse.SUPPRESS)  # the spelling before --quiet
  parser.set_defaults(run=main)


def _clips(args) -> list[kinetics.Clip]:
  """The annotated clips of --split, restricted to --classes and --max_samples."""
  parsed = kinetics.read_annotations(args.annotations)
  print_problems(args.annotations, parsed.problems)
  names = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
  version = 600 if args.eval_type == "rgb600" else 400
  classes = kinetics.check_classes(names, version) if names else None
  return kinetics.select(parsed.clips, splits=[args.split], classes=classes,
                         max_samples=args.max_samples)


def main(args) -> None:
  from i3d.kinetics import evaluation  # pylint: disable=import-outside-toplevel
  settings = evaluation.EvalConfig(
      protocol=flags.protocol(args), input_settings=flags.input_settings(args),
      top_k=args.top_k, save_logits=args.save_logits, use_cache=args.use_cache,
      workers=args.workers, view_batch=args.view_batch)
  clips = _clips(args)
  classifier = flags.classifier(args)
  result = evaluation.evaluate(classifier, clips, args.video_dir, args.output_dir, settings,
                               progress=not args.quiet)
  print(f"wrote {args.output_dir}/ (predictions.jsonl, metrics.json, "
        f"{evaluation.ACTIVITYNET_FILE}, summary.md, plots)")
  print(evaluation.score_line(result))

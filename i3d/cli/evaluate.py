"""`i3d evaluate`: score a classifier on annotated Kinetics clips; resumable, with reports."""

import sys
from pathlib import Path

from i3d import kinetics
from i3d.cli import flags
from i3d.errors import UserError


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "evaluate", help="Top-k accuracy of a classifier over a Kinetics split (resumable).",
      description="Classify every annotated clip found under --video_dir, append each result to "
                  "OUTPUT_DIR/predictions.jsonl, and write metrics.json, an ActivityNet-format "
                  "results file, summary.md and plots. Run it again to resume.")
  parser.add_argument("--annotations", type=Path, required=True,
                      help="Official Kinetics CSV or JSON annotations.")
  parser.add_argument("--video_dir", required=True,
                      help="Clips named {youtube_id}_{start:06d}_{end:06d}.mp4, anywhere below "
                           "(with --runner also gs://... or any filesystem tf.io.gfile reads).")
  parser.add_argument("--output_dir", required=True,
                      help="Where results go (with --runner also gs://...).")
  flags.add_classifier_flags(parser)
  parser.add_argument("--split", default="validation", help="Split of the annotations to score.")
  parser.add_argument("--classes", default=None, help="Comma-separated class names to keep.")
  parser.add_argument("--max_samples", type=int, default=None, help="At most this many clips.")
  flags.add_view_flags(parser)
  flags.add_input_flags(parser, trim=False)
  parser.add_argument("--top_k", type=int, default=5, help="Classes kept per video (>= 5).")
  parser.add_argument("--save_logits", action="store_true",
                      help="Also store every stream's logits in predictions.jsonl.")
  parser.add_argument("--workers", type=int, default=2,
                      help="Videos decoded in parallel; with --runner DirectRunner, worker "
                           "processes (one per core).")
  flags.add_runner_flags(parser)
  parser.add_argument("--no_progress", action="store_true", help="No progress bar.")
  parser.set_defaults(run=main)


def _clips(args) -> list[kinetics.Clip]:
  """The annotated clips of --split, restricted to --classes and --max_samples."""
  parsed = kinetics.read_annotations(args.annotations)
  if parsed.problems:
    print(f"{args.annotations}: {len(parsed.problems)} malformed rows skipped (first: line "
          f"{parsed.problems[0].line}: {parsed.problems[0].reason})", file=sys.stderr)
  names = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
  version = 600 if args.eval_type == "rgb600" else 400
  classes = kinetics.check_classes(names, version) if names else None
  return kinetics.select(parsed.clips, splits=[args.split], classes=classes,
                         max_samples=args.max_samples)


def _run_pipeline(args, clips: list[kinetics.Clip], settings) -> dict:
  """The evaluation as a Beam pipeline on --runner."""
  # pylint: disable=import-outside-toplevel
  from i3d.pipelines import evaluate as pipeline
  from i3d.pipelines import options
  spec = pipeline.ClassifierSpec(args.eval_type, args.checkpoint_dir, args.imagenet_pretrained)
  return pipeline.evaluate(spec, clips, args.video_dir, args.output_dir, settings,
                           options.pipeline_options(args.runner, args.workers, args.beam_args),
                           options.threads_per_worker(args.runner, args.workers),
                           progress=not args.no_progress)


def main(args) -> None:
  from i3d.kinetics import evaluation  # pylint: disable=import-outside-toplevel
  settings = evaluation.EvalConfig(
      protocol=flags.protocol(args), input_settings=flags.input_settings(args),
      top_k=args.top_k, save_logits=args.save_logits, use_cache=args.use_cache,
      workers=args.workers, view_batch=args.view_batch)
  clips = _clips(args)
  if args.runner:
    result = _run_pipeline(args, clips, settings)
  else:
    if "://" in args.video_dir or "://" in args.output_dir:
      raise UserError("remote --video_dir or --output_dir need a Beam --runner (e.g. "
                      "--runner DirectRunner)")
    result = evaluation.evaluate(flags.classifier(args), clips, Path(args.video_dir),
                                 Path(args.output_dir), settings,
                                 progress=not args.no_progress)
  print(f"wrote {args.output_dir}/ (predictions.jsonl, metrics.json, "
        f"{evaluation.ACTIVITYNET_FILE}, summary.md, plots)")
  print(evaluation.score_line(result))

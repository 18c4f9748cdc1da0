"""`i3d evaluate`: score a classifier on annotated Kinetics clips; resumable, with reports."""

from pathlib import Path

from i3d.cli import flags


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "evaluate", help="Top-k accuracy of a classifier over a Kinetics split (resumable).",
      description="Classify every annotated clip found under --video_dir, append each result to "
                  "OUTPUT_DIR/predictions.jsonl, and write metrics.json, an ActivityNet-format "
                  "results file, summary.md and plots. Run it again to resume.")
  flags.add_annotation_flags(parser)
  parser.add_argument("--output_dir", type=Path, required=True, help="Where results go.")
  flags.add_classifier_flags(parser)
  flags.add_view_flags(parser)
  flags.add_input_flags(parser, trim=False)
  parser.add_argument("--top_k", type=int, default=5, help="Classes kept per video (>= 5).")
  parser.add_argument("--save_logits", action="store_true",
                      help="Also store every stream's logits in predictions.jsonl.")
  parser.add_argument("--workers", type=int, default=2, help="Videos decoded in parallel.")
  parser.add_argument("--no_progress", action="store_true", help="No progress bar.")
  parser.set_defaults(run=main)


def main(args) -> None:
  from i3d.kinetics import evaluation  # pylint: disable=import-outside-toplevel
  settings = evaluation.EvalConfig(
      protocol=flags.protocol(args), input_settings=flags.input_settings(args),
      top_k=args.top_k, save_logits=args.save_logits, use_cache=args.use_cache,
      workers=args.workers, view_batch=args.view_batch)
  clips = flags.annotated_clips(args)
  classifier = flags.classifier(args)
  result = evaluation.evaluate(classifier, clips, args.video_dir, args.output_dir, settings,
                               progress=not args.no_progress)
  print(f"wrote {args.output_dir}/ (predictions.jsonl, metrics.json, "
        f"{evaluation.ACTIVITYNET_FILE}, summary.md, plots)")
  print(evaluation.score_line(result))

"""`i3d evaluate`: score a classifier on annotated Kinetics clips, or on the records of a labelled
set (named by the records' labels.txt); resumable, with reports."""

import dataclasses
from pathlib import Path

from i3d.cli import flags
from i3d.errors import UsageError
from i3d.model.labels import CLASS_LIST_FILE


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "evaluate", help="top-k accuracy of a classifier over a Kinetics split (resumable)",
      description="Classify every annotated clip found under --video_dir (or stored in the "
                  "--records of `i3d preprocess`), append each result to "
                  "OUTPUT_DIR/predictions.jsonl, and write metrics.json, an ActivityNet-format "
                  "results file, summary.md and plots. Run it again to resume.")
  flags.add_annotation_flags(parser, required=False, remote=True)
  parser.add_argument("--records", default=None,
                      help="read the clips' inputs from this records folder (`i3d preprocess "
                           "--output_dir`; with --runner also gs://...) instead of videos; "
                           "--annotations is then optional; records of a labelled set are "
                           "scored against their labels.txt, whose class count must be the "
                           "checkpoint's")
  parser.add_argument("--output_dir", required=True,
                      help="where results go (with --runner also gs://...)")
  flags.add_classifier_flags(parser)
  flags.add_view_flags(parser)
  flags.add_input_flags(parser, trim=False)
  parser.add_argument("--top_k", type=int, default=5, help="classes kept per video (>= 5)")
  parser.add_argument("--save_logits", action="store_true",
                      help="also store every stream's logits in predictions.jsonl")
  parser.add_argument("--workers", type=int, default=2,
                      help="videos decoded in parallel; with --runner DirectRunner, worker "
                           "processes (one per core)")
  parser.add_argument("--retry_failed", action="store_true",
                      help="try the videos in failures.jsonl again (a video whose file changed "
                           "is tried again anyway)")
  flags.add_runner_flags(parser)
  flags.add_run_flags(parser)


def main(args) -> None:
  from i3d.kinetics import evaluation, scoring  # pylint: disable=import-outside-toplevel
  flags.resolve_checkpoints(args)
  if (args.records is None) == (args.video_dir is None):
    raise UsageError("give --video_dir (with --annotations) or --records, not both")
  if args.records is None and args.annotations is None:
    raise UsageError("--annotations is required with --video_dir")
  config = flags.config(evaluation.EvalConfig, args, protocol=flags.protocol(args),
                        input_settings=flags.input_settings(args))
  class_list = None
  if args.records is not None:
    from i3d.kinetics import recordset  # pylint: disable=import-outside-toplevel
    clips, inputs = recordset.records_run(
        args.records, flags.annotated_clips(args) if args.annotations else None, args.flow_backend)
    config = dataclasses.replace(config, input_settings=inputs)
    class_list = recordset.read_labels(args.records)
  else:
    clips = flags.annotated_clips(args)
  where = f"{args.records}/{CLASS_LIST_FILE}"
  if args.runner:
    # The evaluation as a Beam pipeline on --runner (`class_list`: the records' labels.txt, read
    # from `where`).
    from i3d.pipelines import evaluate as pipeline  # pylint: disable=import-outside-toplevel
    from i3d.pipelines import options  # pylint: disable=import-outside-toplevel
    spec = pipeline.ClassifierSpec(args.eval_type, args.checkpoint_dir, args.imagenet_pretrained,
                                   args.precision, args.rgb_checkpoint, args.flow_checkpoint,
                                   download=not args.offline, class_list=class_list,
                                   class_list_file=where)
    result = pipeline.evaluate(spec, clips, args.video_dir, args.output_dir, config,
                               options.pipeline_options(args.runner, args.workers, args.beam_args),
                               options.threads_per_worker(args.runner, args.workers),
                               progress=not args.quiet, records_dir=args.records)
  else:
    if any("://" in str(path) for path in (args.video_dir, args.output_dir, args.records)):
      raise UsageError("remote --video_dir, --records or --output_dir need a Beam --runner (e.g. "
                      "--runner DirectRunner)")
    classifier = flags.classifier(args)
    if class_list is not None:
      classifier.relabel(class_list, where)
    result = evaluation.evaluate(classifier, clips, args.video_dir and
                                 Path(args.video_dir), Path(args.output_dir), config,
                                 progress=not args.quiet,
                                 records_dir=args.records and Path(args.records))
  print(f"wrote {args.output_dir}/ (predictions.jsonl, metrics.json, "
        f"{scoring.ACTIVITYNET_FILE}, summary.md, plots)")
  print(scoring.score_line(result))

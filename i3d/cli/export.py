"""`i3d export`: write a classifier as a TF SavedModel for serving or TF Hub."""

from pathlib import Path

from i3d.cli import flags


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "export", help="write a classifier (rgb, rgb600, flow, joint) as a TF SavedModel",
      description="Write a TF SavedModel whose serving_default signature takes rgb and/or flow "
                  "clips and returns logits and probabilities, with labels.txt beside it.")
  parser.add_argument("--output", required=True, help="folder to write the SavedModel to")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace an earlier export in --output (a non-empty folder is "
                           "refused otherwise)")
  flags.add_classifier_flags(parser)
  flags.add_run_flags(parser)


def main(args) -> None:
  from i3d.classify import export  # pylint: disable=import-outside-toplevel
  export.check_output(Path(args.output), args.overwrite)  # before minutes of loading
  classifier = flags.classifier(args)
  export.export_saved_model(classifier, args.output, overwrite=args.overwrite)
  print(f"SavedModel written to {args.output} (signature serving_default: float32 "
        f"{', '.join(classifier.streams)} -> logits, probabilities; {classifier.precision} "
        f"convolutions)")

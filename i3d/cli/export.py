"""`i3d export`: write a classifier as a TF SavedModel for serving or TF Hub."""

from i3d.cli import flags


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "export", help="write a classifier (rgb, rgb600, flow, joint) as a TF SavedModel",
      description="Write a TF SavedModel whose serving_default signature takes rgb and/or flow "
                  "clips and returns logits and probabilities, with labels.txt beside it.")
  parser.add_argument("--output", required=True, help="folder to write the SavedModel to")
  flags.add_classifier_flags(parser)
  flags.add_run_flags(parser)
  parser.set_defaults(run=main)


def main(args) -> None:
  from i3d.classify.export import export_saved_model  # pylint: disable=import-outside-toplevel
  classifier = flags.classifier(args)
  export_saved_model(classifier, args.output)
  print(f"SavedModel written to {args.output} (signature serving_default: float32 "
        f"{', '.join(classifier.streams)} -> logits, probabilities; {classifier.precision} "
        f"convolutions)")

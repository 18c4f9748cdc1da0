"""`i3d export`: write a classifier as a TF SavedModel for serving or TF Hub."""

from i3d.cli import flags


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "export", help="Export a classifier (rgb, rgb600, flow, joint) as a TF SavedModel.")
  parser.add_argument("--output", required=True, help="Folder to write the SavedModel to.")
  flags.add_classifier_flags(parser)
  parser.set_defaults(run=main)


def main(args) -> None:
  from i3d.classify.export import export_saved_model  # pylint: disable=import-outside-toplevel
  classifier = flags.classifier(args)
  export_saved_model(classifier, args.output)
  print(f"SavedModel written to {args.output} (signature serving_default: float32 "
        f"{', '.join(classifier.streams)} -> logits, probabilities; {classifier.precision} "
        f"convolutions)")

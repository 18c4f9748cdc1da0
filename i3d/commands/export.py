"""`i3d export`: write a classifier as a TF SavedModel for serving or TF Hub."""

import argparse

from i3d.classifier import EVAL_TYPES, load_classifier
from i3d.export import export_saved_model


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "export", help="Export a classifier (rgb, rgb600, flow, joint) as a TF SavedModel.")
  parser.add_argument("--eval_type", choices=EVAL_TYPES, default="joint")
  parser.add_argument("--output", required=True, help="Folder to write the SavedModel to.")
  parser.add_argument("--checkpoint_dir", help="Default $I3D_CHECKPOINT_DIR or checkpoints/.")
  parser.add_argument("--imagenet_pretrained", default=True,
                      action=argparse.BooleanOptionalAction,
                      help="ImageNet+Kinetics checkpoints (default) or Kinetics-only.")
  parser.set_defaults(run=main)


def main(args) -> None:
  classifier = load_classifier(args.eval_type, checkpoint_dir=args.checkpoint_dir,
                               imagenet_pretrained=args.imagenet_pretrained)
  export_saved_model(classifier, args.output)
  print(f"SavedModel written to {args.output} (signature serving_default: "
        f"{', '.join(classifier.streams)} -> logits, probabilities)")

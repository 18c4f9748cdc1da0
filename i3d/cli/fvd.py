"""`i3d fvd`: Fréchet Video Distance (and KVD) between real and generated clips."""

import argparse
import sys
import warnings
from pathlib import Path

from i3d.cli import flags


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "fvd", help="Fréchet Video Distance between real and generated clips",
      description="FVD with the reference protocol: the first --num_frames frames of each clip "
                  "resized to 224x224, scaled to [-1, 1], embedded as the 400 Kinetics logits "
                  "of the RGB I3D (rgb_imagenet). A set is a folder of videos, frame folders "
                  "(one per clip) and .npy arrays (N, T, H, W, 3) or (T, H, W, 3), one "
                  ".npy file, or records of `i3d preprocess` (its --output_dir or one shard: "
                  "the stored 25 fps RGB frames). Prints `FVD: <value>` (and `KVD: <value>` "
                  "with --kvd).")
  parser.add_argument("--real", type=Path, required=True, help="the real clips")
  parser.add_argument("--generated", type=Path, required=True, help="the generated clips")
  parser.add_argument("--num_frames", type=int, default=16,
                      help="frames per clip, from its start (at least 9)")
  parser.add_argument("--kvd", action="store_true",
                      help="also the Kernel Video Distance (unbiased polynomial-kernel MMD)")
  parser.add_argument("--batch", type=int, default=16, help="clips per model call")
  flags.add_checkpoint_flag(parser)
  flags.add_run_flags(parser)
  parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> None:
  from i3d.embed import fvd  # pylint: disable=import-outside-toplevel
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", fvd.RankDeficiencyWarning)
    result = fvd.folder_distances(args.real, args.generated, args.num_frames, args.kvd,
                                  args.batch, args.checkpoint_dir, download=not args.offline,
                                  progress=not args.quiet)
  for warning in caught:
    print(f"i3d fvd: warning: {warning.message}", file=sys.stderr)
  print(f"{result.num_real} real and {result.num_generated} generated clips of "
        f"{args.num_frames} frames", file=sys.stderr)
  print(f"FVD: {result.fvd:.4f}")
  if result.kvd is not None:
    print(f"KVD: {result.kvd:.6f}")

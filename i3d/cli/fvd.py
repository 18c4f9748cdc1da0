"""`i3d fvd`: Fréchet Video Distance (and KVD) between real and generated clips."""

import argparse
import json
import warnings
from pathlib import Path

from i3d._util import progress
from i3d.cli import flags


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "fvd", help="Fréchet Video Distance between real and generated clips",
      description="FVD with the reference protocol: the first --num_frames frames of each clip "
                  "resized to 224x224, scaled to [-1, 1], embedded as the 400 Kinetics logits "
                  "of the TF-Hub RGB I3D (rgb_tfhub, as published FVDs). A set is a folder of "
                  "videos, frame folders (one per clip) and .npy arrays (N, T, H, W, 3) or "
                  "(T, H, W, 3), one .npy file, or records of `i3d preprocess` (its "
                  "--output_dir or one shard: the stored 25 fps RGB frames). Prints `FVD: "
                  "<value> (<weights>; <clips, frames, sizes>)` (and a KVD line with --kvd), "
                  "or one JSON object with --json.")
  parser.add_argument("--real", type=Path, required=True, help="the real clips")
  parser.add_argument("--generated", type=Path, required=True, help="the generated clips")
  parser.add_argument("--num_frames", type=int, default=16,
                      help="frames per clip, from its start (at least 9)")
  parser.add_argument("--kvd", action="store_true",
                      help="also the Kernel Video Distance (unbiased polynomial-kernel MMD)")
  parser.add_argument("--batch", type=int, default=16, help="clips per model call")
  parser.add_argument("--json", action="store_true",
                      help="print one JSON object (values, weights, clip counts, frames, sizes)")
  flags.add_checkpoint_flag(parser)
  flags.add_stream_checkpoint_flags(parser, ("rgb",), default="rgb_tfhub")
  flags.add_run_flags(parser)


def main(args: argparse.Namespace) -> None:
  from i3d.embed import fvd  # pylint: disable=import-outside-toplevel
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", fvd.RankDeficiencyWarning)
    result = fvd.folder_distances(args.real, args.generated, args.num_frames, args.kvd,
                                  args.batch, args.checkpoint_dir, download=not args.offline,
                                  progress=not args.quiet, checkpoint=args.rgb_checkpoint)
  for warning in caught:
    progress.warn(str(warning.message))
  if args.json:
    print(json.dumps(result.as_json()))
    return
  print(f"FVD: {result.fvd:.4f} ({result.protocol()})")
  if result.kvd is not None:
    print(f"KVD: {result.kvd:.6f} ({result.protocol()})")

"""`i3d preprocess`: compute a video's RGB and flow model inputs once and cache them as .npz."""

import argparse
import sys
from pathlib import Path

from i3d.cli import flags
from i3d.errors import UserError


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "preprocess", help="compute a video's RGB and TV-L1 flow inputs once and save them (.npz)",
      description="Decode a video, sample it at 25 fps, and write the RGB and flow inputs "
                  "(float32 (1, T, 224, 224, 3) and (1, T, 224, 224, 2) in [-1, 1]) with the "
                  "settings used, so `i3d predict` reuses them instead of recomputing flow.")
  parser.add_argument("video", help="video file (anything OpenCV decodes)")
  parser.add_argument("--output", default=None,
                      help="output .npz (default: VIDEO's name with _inputs.npz, beside it)")
  flags.add_input_flags(parser)
  flags.add_run_flags(parser, offline=False)
  parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
  from i3d.inputs import cache  # pylint: disable=import-outside-toplevel
  source = Path(args.video)
  settings = flags.input_settings(args)
  output = Path(args.output) if args.output else cache.default_cache_path(source)
  computed = cache.compute_inputs(source, settings)
  try:
    cache.save_inputs(output, computed, settings.record(source))
  except OSError as e:
    raise UserError(f"{output}: cannot write ({e.strerror})") from None
  shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in computed.items())
  print(f"{output}: {shapes}", file=sys.stdout)
  return 0

"""`i3d preprocess`: compute a video's RGB and flow model inputs once and cache them as .npz."""

import argparse
import sys
from pathlib import Path

from i3d import flow, inputs
from i3d.errors import UserError


def add_input_flags(parser: argparse.ArgumentParser) -> None:
  """The flags every video-reading command shares: trim window and flow backend."""
  parser.add_argument("--time_start", type=float, default=None,
                      help="start of the trim window in seconds (default: start of the video)")
  parser.add_argument("--time_end", type=float, default=None,
                      help="end of the trim window in seconds (default: end of the video)")
  parser.add_argument("--flow_backend", choices=flow.BACKENDS, default="tf",
                      help="TV-L1 implementation: our TensorFlow one (GPU when present) or "
                           "OpenCV's DualTVL1 (the reference)")


def input_settings(args: argparse.Namespace) -> inputs.InputSettings:
  """The `InputSettings` named by the shared flags."""
  return inputs.InputSettings(time_start=args.time_start, time_end=args.time_end,
                              flow_backend=args.flow_backend)


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "preprocess", help="cache a video's RGB and TV-L1 flow inputs (.npz)",
      description="Decode a video, sample it at 25 fps, and write the RGB and flow inputs "
                  "(float32 (1, T, 224, 224, 3) and (1, T, 224, 224, 2) in [-1, 1]) with the "
                  "settings used, so `i3d predict` reuses them instead of recomputing flow.")
  parser.add_argument("video", help="video file (anything OpenCV decodes)")
  parser.add_argument("--output", default=None,
                      help="output .npz (default: VIDEO's name with _inputs.npz, beside it)")
  add_input_flags(parser)
  parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
  source = Path(args.video)
  settings = input_settings(args)
  output = Path(args.output) if args.output else inputs.default_cache_path(source)
  computed = inputs.compute_inputs(source, settings)
  try:
    inputs.save_inputs(output, computed, settings.record(source))
  except OSError as e:
    raise UserError(f"{output}: cannot write ({e.strerror})") from None
  shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in computed.items())
  print(f"{output}: {shapes}", file=sys.stdout)
  return 0

"""The `i3d` console script: one absl app whose subcommands are the modules in `COMMANDS`.

Each command module defines `register(subparsers)`, which adds its parser and sets
`run=callable(args) -> int | None` as a default. Command modules import TensorFlow only when
they run, so `i3d kinetics ... --help` starts at once.
"""

import importlib
import sys

from absl import app
from absl.flags import argparse_flags

from i3d.errors import UserError

COMMANDS = ("predict", "preprocess", "evaluate", "export", "download", "report", "kinetics",
            "features", "fvd")


def _parser() -> argparse_flags.ArgumentParser:
  parser = argparse_flags.ArgumentParser(
      prog="i3d", description="I3D action recognition toolkit (Kinetics, TensorFlow).")
  subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
  for name in sorted(COMMANDS):
    importlib.import_module(f"i3d.cli.{name}").register(subparsers)
  return parser


def _parse(argv: list[str]):
  parser = _parser()
  args, unknown = parser.parse_known_args(argv[1:])
  if unknown and getattr(args, "runner", None):
    args.beam_args = unknown  # Beam's own pipeline options (see flags.add_runner_flags)
  elif unknown:
    parser.error(f"unrecognized arguments: {' '.join(unknown)}")
  return args


def _main(args) -> None:
  try:
    status = args.run(args)
  except UserError as e:
    print(f"i3d {args.command}: error: {e}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print(f"i3d {args.command}: interrupted", file=sys.stderr)
    sys.exit(130)
  sys.exit(status or 0)


def run() -> None:
  """Console-script entry point."""
  app.run(_main, flags_parser=_parse)


if __name__ == "__main__":
  run()

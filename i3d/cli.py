"""The `i3d` console script: one absl app whose subcommands live in `i3d.commands`.

Each public module in `i3d/commands/` defines `register(subparsers)`, which adds its parser and sets
`run=callable(args) -> int | None` as a default. Modules are discovered, so adding a subcommand
never touches this file.
"""

import importlib
import pkgutil
import sys

from absl import app
from absl.flags import argparse_flags

from i3d import commands
from i3d.errors import UserError


def _parser(argv: list[str]) -> argparse_flags.ArgumentParser:
  parser = argparse_flags.ArgumentParser(
      prog="i3d", description="I3D action recognition toolkit (Kinetics, TensorFlow).")
  subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
  modules = [m for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
  for info in sorted(modules, key=lambda m: m.name):
    importlib.import_module(f"{commands.__name__}.{info.name}").register(subparsers)
  return parser


def _parse(argv: list[str]):
  return _parser(argv).parse_args(argv[1:])


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

"""The `i3d` console script: one argparse program whose subcommands are the modules in `COMMANDS`.

Each command module defines `register(subparsers)`, which adds its parser (with a one-line
`help`), and `main(args) -> int | None`, which runs it (a module without `main`, `kinetics`,
sets `run=callable(args)` on each of its subcommands). Command modules import
TensorFlow only when they run, so `i3d kinetics ... --help` starts at once. Every parser shows
its defaults in `--help`, and errors name the subcommand that failed (`i3d kinetics subset:
error: ...`).
"""

import argparse
import importlib
import sys

import i3d
from i3d._util import env, progress
from i3d.errors import UsageError, UserError

COMMANDS = ("predict", "preprocess", "evaluate", "export", "download", "report", "kinetics",
            "features", "fvd", "train")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
  """Shows `(default: X)` after each flag's help, except where there is nothing to show (no
  default, an on/off switch) or the help already says it."""

  def _get_help_string(self, action: argparse.Action) -> str:
    text = action.help or ""
    if action.default in (None, False, True, argparse.SUPPRESS) or "default" in text:
      return text
    return super()._get_help_string(action) or text


class Parser(argparse.ArgumentParser):
  """An `ArgumentParser` whose help shows defaults; subcommand parsers are of this class too."""

  def __init__(self, *args, **kwargs):
    kwargs.setdefault("formatter_class", HelpFormatter)
    super().__init__(*args, **kwargs)


def _parser() -> Parser:
  parser = Parser(prog="i3d", description="I3D action recognition toolkit (Kinetics, TensorFlow).")
  parser.add_argument("--version", action="version", version=f"i3d {i3d.__version__}")
  subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
  for name in sorted(COMMANDS):
    module = importlib.import_module(f"i3d.cli.{name}")
    module.register(subparsers)
    if hasattr(module, "main"):  # `i3d kinetics`' subcommands set their own `run`
      subparsers.choices[name].set_defaults(run=module.main)
  for leaf in _leaves(parser):
    leaf.set_defaults(parser=leaf)
  return parser


def _leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
  """The parsers that run something: subcommands without subcommands of their own."""
  nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
  if not nested:
    return [parser]
  return [leaf for action in nested for sub in dict.fromkeys(action.choices.values())
          for leaf in _leaves(sub)]


def _parse(argv: list[str]) -> argparse.Namespace:
  parser = _parser()
  args, unknown = parser.parse_known_args(argv[1:])
  if unknown and getattr(args, "runner", None):
    args.beam_args = unknown  # Beam's own pipeline options (see flags.add_runner_flags)
  elif unknown:
    getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
  return args


def _main(args: argparse.Namespace) -> None:
  parser = args.parser
  progress.set_enabled(False if getattr(args, "quiet", False) else None)
  try:
    status = args.run(args)
  except UserError as e:
    if isinstance(e, UsageError):
      parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {e}", file=sys.stderr)
    sys.exit(2)
  except OSError as e:  # a folder that cannot be written, a full disk: the system's words suffice
    where = f"{e.filename}: " if e.filename else ""
    print(f"{parser.prog}: error: {where}{e.strerror or e}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print(f"{parser.prog}: interrupted", file=sys.stderr)
    sys.exit(130)
  sys.exit(status or 0)


def run() -> None:
  """Console-script entry point: a quiet TensorFlow start, then the command."""
  env.set_library_defaults()
  if hasattr(sys.stdout, "reconfigure"):  # print file names that are not UTF-8 as their bytes
    sys.stdout.reconfigure(errors="surrogateescape")
  _main(_parse(sys.argv))


if __name__ == "__main__":
  run()

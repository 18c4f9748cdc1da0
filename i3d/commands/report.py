"""`i3d report`: re-print an evaluation run's summary and redraw its plots."""

from pathlib import Path

from i3d import report


def register(subparsers) -> None:
  parser = subparsers.add_parser("report", help="Print the summary of an `i3d evaluate` run and "
                                                "write its plots.")
  parser.add_argument("output_dir", type=Path, help="The --output_dir of `i3d evaluate`.")
  parser.set_defaults(run=main)


def main(args) -> None:
  print(report.write_report(args.output_dir), end="")

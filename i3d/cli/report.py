"""`i3d report`: re-print an evaluation run's summary and redraw its plots."""

from pathlib import Path


def register(subparsers) -> None:
  parser = subparsers.add_parser("report", help="Print the summary of an `i3d evaluate` run and "
                                                "write its plots.")
  parser.add_argument("output_dir", type=Path, help="The --output_dir of `i3d evaluate`.")
  parser.set_defaults(run=main)


def main(args) -> None:
  from i3d.kinetics import report  # pylint: disable=import-outside-toplevel
  print(report.write_report(args.output_dir), end="")

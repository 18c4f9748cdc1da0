"""`i3d report`: re-print an evaluation run's summary and redraw its plots."""

from pathlib import Path


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "report", help="print the summary of an `i3d evaluate` run and redraw its plots",
      description="Rewrite summary.md and the plots of an evaluation run from its metrics.json "
                  "and print the summary.")
  parser.add_argument("output_dir", type=Path, help="the --output_dir of `i3d evaluate`")


def main(args) -> None:
  from i3d.kinetics import report  # pylint: disable=import-outside-toplevel
  print(report.write_report(args.output_dir), end="")

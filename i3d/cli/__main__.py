"""`python -m i3d.cli ...` runs the `i3d` command."""

from i3d.cli.main import run

run()

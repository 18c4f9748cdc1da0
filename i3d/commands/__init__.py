"""Subcommands of the `i3d` console script, one module each (see `i3d.cli`)."""

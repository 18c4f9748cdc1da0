"""The `i3d` command line: `main` (the console script), `flags` (shared flags), one module per
subcommand."""

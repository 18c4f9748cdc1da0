"""Running the `i3d` command in-process, as the console script does, and reading its errors."""

import pytest

from i3d.cli import main as cli


def run_cli(*argv) -> int:
  """Runs `i3d ARGV...` through the real parser and error handling; returns the exit status."""
  with pytest.raises(SystemExit) as exit_:
    cli._main(cli._parse(["i3d", *map(str, argv)]))
  return exit_.value.code


def one_line_error(capsys, *argv) -> str:
  """The error of an `i3d ARGV...` run that must fail with one line on stderr and no traceback."""
  capsys.readouterr()
  status = run_cli(*argv)
  err = capsys.readouterr().err.strip()
  assert status not in (0, None), err
  assert "\n" not in err and "Traceback" not in err, err
  assert err.startswith(f"i3d {argv[0]}") and ": error: " in err, err
  return err

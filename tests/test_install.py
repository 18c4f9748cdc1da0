"""The install check (`.ci/wheel_check.py`) as part of the suite, so that it runs beside the other
tests: the wheel, installed into a fresh virtual environment, works outside the clone (its
commands, its packaged data, and Beam workers that hold only the wheel)."""

import subprocess
import sys

from tests.support.clips import REPO


def test_the_wheel_works_outside_the_clone():
  result = subprocess.run([sys.executable, str(REPO / ".ci" / "wheel_check.py")],
                          capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
  assert "wheel check: passed" in result.stdout, result.stdout

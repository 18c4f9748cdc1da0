"""evaluate_sample.py in this process: its absl flags parsed afresh for each run, its output and
exit status returned as a subprocess's would be (a process start costs a TensorFlow start)."""

import contextlib
import importlib
import io
import os
import subprocess
import sys
from types import ModuleType
from unittest import mock

from tests.support.clips import REPO


def sample_script() -> ModuleType:
  """The script as a module, imported once; its import-time environment defaults are undone."""
  if "evaluate_sample" in sys.modules:
    return sys.modules["evaluate_sample"]
  with mock.patch.dict(os.environ), mock.patch.object(sys, "path", [str(REPO), *sys.path]):
    return importlib.import_module("evaluate_sample")


def run_sample(*flags: str, env: dict | None = None) -> subprocess.CompletedProcess:
  """`python evaluate_sample.py FLAGS` with `env` added to the environment, in this process."""
  script = sample_script()
  script.FLAGS.unparse_flags()
  script.FLAGS(["evaluate_sample.py", *flags])
  out, err = io.StringIO(), io.StringIO()
  with (mock.patch.dict(os.environ, env or {}), contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err)):
    try:
      script.main([])
      status = 0
    except SystemExit as e:
      status = e.code
  return subprocess.CompletedProcess(["evaluate_sample.py", *flags], status, out.getvalue(),
                                     err.getvalue())

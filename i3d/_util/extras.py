"""Optional dependencies: the extras of `pip install "i3d[EXTRA]"` and the one-line error a
command gives when the one it needs is not installed."""

import importlib
import importlib.util
from types import ModuleType

from i3d.errors import UserError

# Import name -> the extra that installs it (pyproject.toml's [project.optional-dependencies]).
EXTRAS = {
    "apache_beam": "beam",
    "matplotlib": "report",
    "yt_dlp": "kinetics",
    "imageio_ffmpeg": "kinetics",
    "tensorflow_hub": "hub",
}


def available(module: str) -> bool:
  """Whether `module` (a key of `EXTRAS`) can be imported."""
  try:
    return importlib.util.find_spec(module) is not None
  except (ImportError, ValueError):  # a finder that refuses it; a module set to None
    return False


def hint(module: str) -> str:
  """`pip install "i3d[EXTRA]"`, the command that installs `module`."""
  return f'pip install "i3d[{EXTRAS[module]}]"'


def require(module: str, purpose: str) -> ModuleType:
  """Imports `module`; when it is not installed, a `UserError` saying which extra to install.

  Args:
    module: an import name of `EXTRAS`.
    purpose: what needs it, e.g. `--runner` or `the evaluation plots`.
  """
  if not available(module):
    raise UserError(f"{purpose} needs {module}, which is not installed: {hint(module)}")
  return importlib.import_module(module)

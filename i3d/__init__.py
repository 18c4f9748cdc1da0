"""I3D: the Inflated 3D ConvNet of Carreira & Zisserman (CVPR 2017) in TensorFlow 2 / Sonnet 2.

The research API lives here (`i3d.InceptionI3d`, `i3d.load_checkpoint`, `i3d.load_classifier`,
...). Names are imported on first use, so `import i3d` (and `i3d.kinetics`) stays free of
TensorFlow until a name that needs it is touched. Importing changes no environment variable and
installs no import hook; `i3d._util.env.set_library_defaults()` is the quiet start the `i3d`
command uses.

Layers, each importing only from those before it: `i3d._util` (plumbing), `i3d.model` (network,
weights), `i3d.inputs` (video to model inputs), `i3d.classify` (classifier, views, predict,
export), `i3d.embed` (features, FVD), `i3d.kinetics` (datasets, evaluation), `i3d.cli` (the
`i3d` command).
"""

import importlib
from importlib import metadata
from typing import Any

try:
  __version__ = metadata.version("i3d")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
  __version__ = "unknown"

# Public name -> module that defines it.
_EXPORTS = {
    "UserError": "i3d.errors", "CheckpointError": "i3d.errors", "DownloadError": "i3d.errors",
    "EVAL_TYPES": "i3d.model.streams", "checkpoint_names": "i3d.model.streams",
    "choose_checkpoints": "i3d.model.streams",
    "CHECKPOINTS": "i3d.model.registry", "CheckpointInfo": "i3d.model.registry",
    "class_index": "i3d.model.labels", "class_name": "i3d.model.labels",
    "load_label_map": "i3d.model.labels",
    "VALID_ENDPOINTS": "i3d.model.network", "BatchNorm": "i3d.model.network",
    "InceptionI3d": "i3d.model.network", "Unit3D": "i3d.model.network",
    "fetch_checkpoint": "i3d.model.checkpoints", "load_checkpoint": "i3d.model.checkpoints",
    "Classifier": "i3d.classify.classifier", "load_classifier": "i3d.classify.classifier",
    "extract_features": "i3d.embed.features",
    "set_library_defaults": "i3d._util.env",
}
# Public name -> a module reached as an attribute (`i3d.fvd.frechet_video_distance(...)`).
_MODULES = {"fvd": "i3d.embed.fvd"}

__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str) -> Any:
  """Imports a public name's module on first use (PEP 562)."""
  if name in _MODULES:
    value: Any = importlib.import_module(_MODULES[name])
  elif name in _EXPORTS:
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
  else:
    raise AttributeError(f"module 'i3d' has no attribute {name!r}")
  globals()[name] = value
  return value


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(__all__))

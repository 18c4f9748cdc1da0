"""Export a classifier as a self-contained TF SavedModel (loadable without this package)."""

import json
import os
import shutil
from pathlib import Path

import tensorflow as tf

from i3d._util.files import atomic_write, replace_folder, staging_folder, write_json
from i3d.classify.classifier import Classifier
from i3d.errors import UserError
from i3d.model.streams import INPUT_SIZE, STREAM_CHANNELS

# What an export holds besides the SavedModel: the folders and files this toolkit wrote, so that
# `overwrite` replaces those and nothing else.
MARKER = "i3d_export.json"


def serving_module(classifier: Classifier) -> tf.Module:
  """A module whose `serve` takes the classifier's streams as float32 (B, T, 224, 224, C)."""
  module = tf.Module()
  module.towers = dict(classifier.towers)  # only the weights inference reads, not both copies
  specs = {s: tf.TensorSpec([None, None, INPUT_SIZE, INPUT_SIZE, STREAM_CHANNELS[s]],
                           tf.float32, name=s)
           for s in classifier.streams}

  @tf.function(input_signature=[specs], autograph=False)
  def serve(inputs):
    logits = classifier(**inputs)
    return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

  module.serve = serve
  return module


def export_saved_model(classifier: Classifier, output_dir: os.PathLike,
                       overwrite: bool = False) -> None:
  """Write a SavedModel whose `serving_default` maps rgb/flow clips to logits, probabilities.

  It is written beside `output_dir` and swapped into place (`files.replace_folder`), so a failed
  or killed export leaves the earlier folder or the new one, never half of one. A non-empty
  `output_dir` is replaced only with `overwrite`, and only when it holds an earlier export.
  """
  output = Path(os.path.abspath(output_dir))
  check_output(output, overwrite)
  module = serving_module(classifier)
  signature = module.serve.get_concrete_function()
  try:
    temporary = staging_folder(output)
    tf.saved_model.save(module, str(temporary), signatures={"serving_default": signature})
    with atomic_write(temporary / "labels.txt") as f:
      f.write("\n".join(classifier.labels) + "\n")
    write_json(temporary / MARKER, {"files": _listing(temporary)})
    replace_folder(temporary, output)
  except (OSError, tf.errors.OpError) as e:
    raise UserError(f"cannot write the SavedModel to {output} "
                    f"({getattr(e, 'strerror', None) or getattr(e, 'message', e)}); choose a "
                    f"writable folder") from None
  finally:
    shutil.rmtree(output.with_name(f".{output.name}.tmp"), ignore_errors=True)


def _listing(folder: Path) -> list[str]:
  """Every entry below `folder` (files, links and folders, with a trailing / for folders), as
  sorted relative paths, without `MARKER`."""
  entries = []
  for parent, folders, names in os.walk(folder):
    base = Path(parent).relative_to(folder)
    entries += [f"{(base / n).as_posix()}/" for n in folders]
    entries += [(base / n).as_posix() for n in names if parent != str(folder) or n != MARKER]
  return sorted(entries)


def check_output(output: Path, overwrite: bool) -> None:
  """A `UserError` unless `output` is free, empty, or (with `overwrite`) an earlier export holding
  nothing but what the export wrote (its `MARKER` lists it)."""
  if output.is_symlink():
    raise UserError(f"{output} is a symbolic link; give the folder it points to, or a new one")
  if output.exists() and not output.is_dir():
    raise UserError(f"{output} is a file; choose a folder for the SavedModel")
  if output.is_dir() and any(output.iterdir()):
    if not overwrite:
      raise UserError(f"{output} is not empty; pass --overwrite to replace an earlier export, "
                      f"or choose an empty folder")
    marker = output / MARKER
    try:
      written = json.loads(marker.read_text()) if marker.is_file() and not marker.is_symlink() \
          else None
    except (OSError, ValueError):
      written = None
    if not isinstance(written, dict) or not isinstance(written.get("files"), list):
      raise UserError(f"{output} is not an export of this toolkit (no valid {MARKER}); not "
                      f"replacing it: choose an empty folder, or remove it yourself")
    foreign = sorted(set(_listing(output)) - set(map(str, written["files"])))
    if foreign:
      raise UserError(f"{output} holds files the export did not write ({', '.join(foreign[:3])}"
                      f"{', ...' if len(foreign) > 3 else ''}); not replacing it: move them "
                      f"away or choose an empty folder")

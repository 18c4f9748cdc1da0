"""Training and evaluation clips from labelled records (`i3d preprocess --dataset`): the class list,
one checking pass over the records, and the `tf.data` chains that cut model inputs.

Every random choice (the order of the clips, each clip's window, crop and flip) is a function of
the seed and the clip's position in the run, so a run resumed at step s sees the data it would
have seen without stopping.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from i3d._util import text
from i3d._util.files import check_regular
from i3d.errors import UserError
from i3d.inputs import records, transforms
from i3d.model.labels import CLASS_LIST_FILE, read_class_list
from i3d.model.streams import STREAM_CHANNELS

SHUFFLE_BLOCK = 256  # records shuffled together (held in memory at once)


def read_labels(folder: str | Path) -> tuple[str, ...]:
  """The class names of a records folder: its `labels.txt` (`read_class_list`: line i names
  class i), at least two."""
  path = Path(folder) / CLASS_LIST_FILE
  if not path.exists():
    raise UserError(f"{path}: no class list; labelled records (`i3d preprocess --dataset`) hold "
                    f"one class name a line there")
  names = read_class_list(path)
  if len(names) < 2:
    raise UserError(f"{path}: {text.count(len(names), 'class', 'classes')}; a classifier needs at "
                    f"least two distinct class names, one a line")
  return names


def check_same_labels(train: tuple[str, ...], other: tuple[str, ...], where: str) -> None:
  """A `UserError` unless the class lists of the training and evaluation records are the same."""
  if train != other:
    differ = next((i for i, (a, b) in enumerate(zip(train, other)) if a != b),
                  min(len(train), len(other)))
    raise UserError(f"{where}/{CLASS_LIST_FILE} differs from the training records' class list "
                    f"(line {differ + 1}: "
                    f"{other[differ] if differ < len(other) else 'missing'!r} vs "
                    f"{train[differ] if differ < len(train) else 'missing'!r}); preprocess both "
                    f"sets with the same classes")


@dataclasses.dataclass(frozen=True)
class RecordSet:
  """A checked records folder: its shards, class names, clips per class and settings."""
  folder: str
  shards: tuple[str, ...]
  labels: tuple[str, ...]
  per_class: tuple[int, ...]
  settings: dict

  @property
  def size(self) -> int:
    return sum(self.per_class)


def _context(serialized: tf.Tensor) -> dict:
  spec = {records.EXAMPLE_ID: tf.io.FixedLenFeature([], tf.string),
          records.SETTINGS: tf.io.FixedLenFeature([], tf.string, default_value=""),
          records.LABEL_INDEX: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
          records.LABEL_STRING: tf.io.FixedLenFeature([], tf.string, default_value="")}
  return tf.io.parse_single_sequence_example(serialized, spec)[0]


def scan(folder: str | Path, streams: Sequence[str], labels: tuple[str, ...] | None = None,
         every_class: bool = True) -> RecordSet:
  """Reads every record's context once and checks it: labelled, its label a line of the class
  list (`labels`, else the folder's own), the same settings throughout, holding `streams`; with
  `every_class`, every class has clips. Any problem is one `UserError` line naming the shard."""
  folder = str(folder)
  names = labels if labels is not None else read_labels(folder)
  shards = [str(p) for p in records.list_shards(folder)]
  if not shards:
    raise UserError(f"{folder}: no record shards (NAME-00000-of-0000N.tfrecord); make them with "
                    f"`i3d preprocess --dataset ... --output_dir {folder}`")
  counts = np.zeros(len(names), np.int64)
  settings = None
  for shard in shards:
    check_regular(shard, f"{shard} (a shard)")
    dataset = tf.data.TFRecordDataset(shard, records.compression_type(shard)).map(_context)
    seen = 0
    try:
      for context in dataset.as_numpy_iterator():
        seen += 1
        key = context[records.EXAMPLE_ID].decode(errors="replace")
        settings = _check_settings(context, settings, streams, shard, key)
        _check_label(context, names, shard, key)
        counts[context[records.LABEL_INDEX]] += 1
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
      raise records.shard_read_error(shard, seen, e) from None
  empty = [n for n, c in zip(names, counts) if c == 0]
  if every_class and empty:
    raise UserError(f"{folder}: {text.count(len(empty), 'class', 'classes')} of {CLASS_LIST_FILE} "
                    f"without clips ({text.some(empty, 5)}); "
                    f"add clips or remove the class")
  return RecordSet(folder, tuple(shards), names, tuple(int(c) for c in counts), settings or {})


def _check_settings(context: dict, settings: dict | None, streams: Sequence[str], shard: str,
                    key: str) -> dict:
  try:
    found = json.loads(context[records.SETTINGS])
  except (ValueError, UnicodeDecodeError):
    raise UserError(f"{shard}: record {key}: i3d/settings is not JSON; the record is damaged or "
                    f"not made by i3d preprocess") from None
  if not isinstance(found, dict):
    raise UserError(f"{shard}: record {key}: i3d/settings is not a JSON object")
  missing = [s for s in streams if s not in found.get("streams", ())]
  if missing:
    raise UserError(f"{shard}: the records hold no {' or '.join(missing)} stream; preprocess "
                    f"with --streams {','.join(streams)}")
  if settings is not None and found != settings:
    records.check_settings(found, settings, shard)
  return found


def _check_label(context: dict, names: tuple[str, ...], shard: str, key: str) -> None:
  index = int(context[records.LABEL_INDEX])
  label = context[records.LABEL_STRING].decode(errors="replace")
  if index < 0:
    raise UserError(f"{shard}: record {key} has no label (clip/label/index); train on labelled "
                    f"records (`i3d preprocess --dataset`)")
  if index >= len(names) or names[index] != label:
    named = f"line {index + 1} is {names[index]!r}" if index < len(names) else (
        f"it has {len(names)} lines")
    raise UserError(f"{shard}: record {key}: label {index} {label!r} does not match "
                    f"{CLASS_LIST_FILE} ({named}); preprocess the records and the class list "
                    f"together")


@dataclasses.dataclass(frozen=True)
class ClipShape:
  """What the model sees of a clip: `frames` frames, `crop` pixels square, these streams;
  training clips mirrored at random with `flip` (not for classes told apart by left and right)."""
  streams: tuple[str, ...]
  frames: int
  crop: int
  flip: bool = True


def _window(total: tf.Tensor, frames: int, start: tf.Tensor) -> tf.Tensor:
  """Frame indices of a window of `frames` from `start`; a clip shorter than `frames` is looped
  from its start (as `i3d.inputs.views.loop_to_length`)."""
  return tf.where(total >= frames, start + tf.range(frames), tf.range(frames) % total)


def clip_inputs(serialized: tf.Tensor, shape: ClipShape, seed: tf.Tensor | None) -> tuple:
  """One record -> ({stream: float32 (frames, crop, crop, C) in [-1, 1]}, label).

  With `seed` (shape [2] integers): a random window, crop position and horizontal flip (a
  flipped flow field has its x component negated); without: the centre window and crop."""
  context, jpegs = records.parse_jpegs(serialized, shape.streams)
  total = tf.size(jpegs[shape.streams[0]], out_type=tf.int32)
  height = tf.cast(context[records.HEIGHT], tf.int32)
  width = tf.cast(context[records.WIDTH], tf.int32)
  spare = tf.stack([tf.maximum(total - shape.frames, 0), height - shape.crop, width - shape.crop])
  if seed is None:
    start, top, left = tf.unstack(spare // 2)
    flip = tf.constant(False)
  else:
    draws = tf.random.stateless_uniform([4], seed, dtype=tf.float32)
    start, top, left = tf.unstack(
        tf.minimum(tf.cast(draws[:3] * tf.cast(spare + 1, tf.float32), tf.int32), spare))
    flip = tf.logical_and(draws[3] < 0.5, shape.flip)
  index = _window(total, shape.frames, start)
  inputs = {}
  for stream in shape.streams:
    images = records.decode_jpegs(tf.gather(jpegs[stream], index))
    images = images[:, top:top + shape.crop, left:left + shape.crop, :]
    values = (transforms.rescale_rgb(tf.cast(images, tf.float32)) if stream == "rgb"
              else records.flow_from_levels(images))
    values = tf.cond(flip, lambda v=values, s=stream: flip_clip(v, s), lambda v=values: v)
    inputs[stream] = tf.ensure_shape(
        values, [shape.frames, shape.crop, shape.crop, STREAM_CHANNELS[stream]])
  return inputs, context[records.LABEL_INDEX]


def flip_clip(values: tf.Tensor, stream: str) -> tf.Tensor:
  """A clip (..., H, W, C) mirrored left-right; flow's x component (channel 0) changes sign."""
  mirrored = tf.reverse(values, axis=[-2])
  if stream == "flow":
    mirrored = mirrored * tf.constant([-1.0, 1.0])
  return mirrored


def _records(paths: Sequence[str], order: tf.Tensor | None = None,
             cycle: int = 1) -> tf.data.Dataset:
  """The serialized records of shards `paths` (in `order`, indices into them), `cycle` shards
  read in turn."""
  kinds = [records.compression_type(p) for p in paths]
  names, compressions = tf.constant(list(paths)), tf.constant(kinds)
  if order is not None:
    names, compressions = tf.gather(names, order), tf.gather(compressions, order)
  return (tf.data.Dataset.from_tensor_slices((names, compressions))
          .interleave(lambda p, c: tf.data.TFRecordDataset(p, compression_type=c),
                      cycle_length=cycle))


def _epoch(paths: Sequence[str], seed: int, epoch: tf.Tensor, take: int) -> tf.data.Dataset:
  """The first `take` records of one epoch, in its order: shards shuffled, read 8 at a time,
  then shuffled in blocks of `SHUFFLE_BLOCK` records; every permutation from (seed, epoch)."""
  base = tf.constant(seed, tf.int64)
  order = tf.random.experimental.stateless_shuffle(tf.range(len(paths)), tf.stack([base, epoch]))

  def shuffled(block: tf.Tensor, serialized: tf.Tensor) -> tf.Tensor:
    count = tf.shape(serialized, out_type=tf.int64)[0]
    where = tf.random.experimental.stateless_shuffle(
        tf.range(count), tf.stack([base, epoch * (1 << 32) + block]))
    return tf.gather(serialized, where)

  return (_records(paths, order, min(len(paths), 8))
          .batch(SHUFFLE_BLOCK).enumerate().map(shuffled).unbatch()
          .take(take))


@dataclasses.dataclass(frozen=True)
class Feed:
  """Which part of each global batch this process reads: `worker` of `workers`, each taking
  `batch // workers` consecutive clips of the global `batch`, in batches of `per_replica` (one
  per local replica in turn)."""
  batch: int
  worker: int = 0
  workers: int = 1
  per_replica: int = 0

  @property
  def per_worker(self) -> int:
    return self.batch // self.workers


def steps_per_epoch(size: int, batch: int) -> int:
  """Steps in one pass over `size` clips (the remainder of a pass is left out)."""
  if size < batch:
    raise UserError(f"{text.count(size, 'training clip')} is fewer than one batch of {batch}; "
                    f"lower --batch")
  return size // batch


def training_batches(clips: RecordSet, shape: ClipShape, seed: int, feed: Feed,
                     first_step: int = 0) -> tf.data.Dataset:
  """This process's share of every global batch from step `first_step` on, forever:
  ({stream: (per_worker, frames, crop, crop, C)}, labels (per_worker,)).

  Clip p of the run (counting from the first step) is cut with the seed (seed, p), and the
  epochs' orders come from (seed, epoch), so where a run starts changes nothing it reads."""
  per_epoch = steps_per_epoch(clips.size, feed.batch)
  first_epoch, within = divmod(first_step, per_epoch)
  take = per_epoch * feed.batch
  dataset = (tf.data.Dataset.range(first_epoch, 1 << 62)
             .flat_map(lambda epoch: _epoch(clips.shards, seed, epoch, take))
             .skip(within * feed.batch)
             .enumerate(start=first_step * feed.batch)
             .filter(lambda p, _: (p % feed.batch) // feed.per_worker == feed.worker)
             .map(lambda p, r: clip_inputs(r, shape, tf.stack([tf.constant(seed, tf.int64), p])),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))
  return dataset.batch(feed.per_replica or feed.per_worker, drop_remainder=True).prefetch(2)


def evaluation_batches(clips: RecordSet, shape: ClipShape, batch: int) -> tf.data.Dataset:
  """Every clip of `clips` once, its centre window and crop, in batches of `batch`."""
  return (_records(clips.shards)
          .map(lambda r: clip_inputs(r, shape, None), num_parallel_calls=tf.data.AUTOTUNE,
               deterministic=True)
          .batch(batch).prefetch(2))

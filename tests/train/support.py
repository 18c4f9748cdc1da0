"""Labelled records of generated clips for the training tests: a horizontal grating drifting up
or down across 256x256 frames, so any crop of any size, mirrored or not, shows which way it
moves."""

import contextlib
from pathlib import Path

import numpy as np
import tensorflow as tf

from i3d.inputs import records
from i3d.inputs.settings import InputSettings

CLASSES = ("up", "down")


def drifting_clip(direction: int, frames: int, phase: float, size: int = 256) -> np.ndarray:
  """uint8 (frames, size, size, 3): stripes 16 px apart moving 4 px a frame (+1 down, -1 up)."""
  y = np.arange(size)
  columns = [127.5 + 120 * np.sin(2 * np.pi * (y - direction * 4 * t + phase) / 16)
             for t in range(frames)]
  return np.repeat(np.stack(columns)[:, :, None, None], size, axis=2).repeat(3, axis=3).astype(
      np.uint8)


def write_set(folder: Path, clips_per_class: int, frames: int = 12, seed: int = 0,
              labels: tuple[str, ...] = CLASSES, shards: int = 2,
              label_of=None) -> Path:
  """A records folder of drifting clips, `clips_per_class` of each class, with `labels.txt`.
  `label_of(i, name)` may give another (label, index) to write for clip i (bad-label tests)."""
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  record = records.settings_record(InputSettings(), streams=("rgb",))
  examples = []
  for i in range(clips_per_class * len(CLASSES)):
    index = i % len(CLASSES)
    clip = drifting_clip(1 if index else -1, frames, float(rng.uniform(0, 16)))
    label, label_index = (labels[index], index) if label_of is None else label_of(i, index)
    info = records.ClipInfo(f"clip{i:03d}", label=label, label_index=label_index)
    examples.append(records.clip_example(clip, None, info, record).SerializeToString())
  for k in range(shards):
    records.write_shard(folder / records.shard_name("train", k, shards), examples[k::shards])
  (folder / "labels.txt").write_text("".join(f"{n}\n" for n in labels), encoding="utf-8")
  return folder


@contextlib.contextmanager
def eagerly():
  """`tf.function`s run as plain Python: a step's checks without the seconds of tracing the
  network (the loop and command tests run the traced step)."""
  tf.config.run_functions_eagerly(True)
  try:
    yield
  finally:
    tf.config.run_functions_eagerly(False)


def write_videos(root: Path, clips_per_class: int, frames: int = 12, seed: int = 0) -> Path:
  """A folder per class (`root/up/*.mp4`, `root/down/*.mp4`) of drifting-grating videos, for
  `i3d preprocess --dataset`."""
  import cv2
  rng = np.random.default_rng(seed)
  for i in range(clips_per_class * len(CLASSES)):
    index = i % len(CLASSES)
    clip = drifting_clip(1 if index else -1, frames, float(rng.uniform(0, 16)))
    path = root / CLASSES[index] / f"v{i:03d}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, clip.shape[2:0:-1])  # type: ignore[attr-defined]
    for frame in clip:
      writer.write(frame)
    writer.release()
  return root

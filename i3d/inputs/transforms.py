"""Transforms: the released RGB preprocessing as TensorFlow ops.

Resize the shorter side to 256 (bilinear, aspect kept), crop 224x224 and rescale RGB to [-1, 1].
`i3d.inputs.stream` applies them to blocks of frames as they are decoded (on the GPU when
TensorFlow sees one).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from i3d.errors import UserError
from i3d.inputs.settings import CROP_SIZE, RESIZE_SHORT_SIDE


def resized_size(height: int, width: int, short_side: int = RESIZE_SHORT_SIDE) -> tuple[int, int]:
  """(height, width) with the shorter side `short_side` and the aspect ratio kept (rounded)."""
  scale = short_side / min(height, width)
  return max(short_side, round(height * scale)), max(short_side, round(width * scale))


def resize_frames(frames: tf.Tensor, short_side: int = RESIZE_SHORT_SIDE) -> tf.Tensor:
  """Frames (..., H, W, C) -> float32 in [0, 255] with shorter side `short_side` (bilinear)."""
  height, width = frames.shape[-3], frames.shape[-2]
  size = resized_size(height, width, short_side)
  return tf.image.resize(tf.cast(frames, tf.float32), size, method="bilinear", antialias=False)


def crop_offsets(height: int, width: int, crops: int = 1,
                 rng: np.random.Generator | None = None) -> list[tuple[int, int]]:
  """Top-left corners of `CROP_SIZE` crops of a (height, width) frame.

  Args:
    height: frame height.
    width: frame width.
    crops: 1 for the centre crop (as released), 3 for crops at the start, centre and end of the
      longer side (multi-view testing).
    rng: with one crop, a generator for a uniformly random crop (training-time augmentation).

  Returns:
    (y, x) of each crop.
  """
  if crops not in (1, 3):
    raise UserError(f"crops must be 1 or 3, got {crops}")
  if rng is not None:
    return [(int(rng.integers(0, height - CROP_SIZE + 1)),
             int(rng.integers(0, width - CROP_SIZE + 1)))]
  centre = (height - CROP_SIZE) // 2, (width - CROP_SIZE) // 2
  if crops == 1:
    return [centre]
  if width >= height:
    return [(centre[0], x) for x in (0, centre[1], width - CROP_SIZE)]
  return [(y, centre[1]) for y in (0, centre[0], height - CROP_SIZE)]


def crop(frames: tf.Tensor, offsets: tuple[int, int], size: int = CROP_SIZE,
         flip: bool = False) -> tf.Tensor:
  """The `size` x `size` window at `offsets` of frames (..., H, W, C), mirrored when `flip`."""
  y, x = offsets
  out = frames[..., y:y + size, x:x + size, :]
  return tf.reverse(out, axis=[-2]) if flip else out


def rescale_rgb(frames: tf.Tensor) -> tf.Tensor:
  """[0, 255] -> [-1, 1], the range the released RGB models take."""
  return frames / 127.5 - 1.0


def to_gray(frames: tf.Tensor) -> tf.Tensor:
  """RGB (..., 3) in [0, 255] -> luma (...) with OpenCV's weights (BT.601)."""
  return tf.tensordot(frames, tf.constant([0.299, 0.587, 0.114], tf.float32), axes=[[-1], [0]])


def rgb_inputs(frames: tf.Tensor, offsets: tuple[int, int] | None = None,
               flip: bool = False) -> tf.Tensor:
  """Resized frames (T, H, W, 3) in [0, 255] -> model RGB input (T, 224, 224, 3) in [-1, 1]."""
  offsets = offsets or crop_offsets(frames.shape[-3], frames.shape[-2])[0]
  return rescale_rgb(crop(frames, offsets, flip=flip))

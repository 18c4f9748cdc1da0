"""Facts about the two I3D streams and the released evaluation types (no TensorFlow needed),
and the one check every entry point applies to model inputs."""

import os
from typing import Optional

import numpy as np

from i3d.errors import InputError, UserError

STREAMS = ("rgb", "flow")
# Input channels: RGB, or the horizontal and vertical components of optical flow.
STREAM_CHANNELS = {"rgb": 3, "flow": 2}
# Name scope of each stream's tower in the released joint graph (`RGB/inception_i3d/...`).
STREAM_SCOPE = {"rgb": "RGB", "flow": "Flow"}
# Spatial size of the released models' inputs (a centre crop of frames resized to 256).
INPUT_SIZE = 224
# The shortest clip the Logits head accepts: its 2x7x7 VALID average pool needs Mixed_5c of at
# least 2 steps at the network's temporal stride of 8. Shorter clips are looped to this.
MIN_FRAMES = 9
# The released evaluation types of evaluate_sample.py.
EVAL_TYPES = ("rgb", "rgb600", "flow", "joint")


def checkpoint_names(eval_type: str, imagenet_pretrained: bool = True) -> dict[str, str]:
  """Released checkpoint per stream for an eval type, as the released evaluate_sample.py chose."""
  if eval_type not in EVAL_TYPES:
    raise UserError(f"unknown eval type {eval_type!r}; expected one of {', '.join(EVAL_TYPES)}")
  if eval_type == "rgb600":
    return {"rgb": "rgb_scratch_kin600"}
  suffix = "imagenet" if imagenet_pretrained else "scratch"
  streams = ("rgb", "flow") if eval_type == "joint" else (eval_type,)
  return {stream: f"{stream}_{suffix}" for stream in streams}


def choose_checkpoints(eval_type: str, imagenet_pretrained: bool = True,
                       rgb: Optional[str | os.PathLike] = None,
                       flow: Optional[str | os.PathLike] = None) -> dict[str, str]:
  """Checkpoint per stream: what `eval_type` and `imagenet_pretrained` pick, with `rgb` / `flow`
  (a known name such as `rgb_tfhub`, or a checkpoint path) in place of that stream's pick."""
  names = checkpoint_names(eval_type, imagenet_pretrained)
  for stream, choice in (("rgb", rgb), ("flow", flow)):
    if choice is None:
      continue
    if stream not in names:
      raise UserError(f"a {stream} checkpoint was given but --eval_type {eval_type} has no "
                      f"{stream} stream; use --eval_type {stream} or joint")
    names[stream] = os.fspath(choice)
  return names


def check_clips(clips, stream: str, name: str = "", min_frames: int = MIN_FRAMES) -> None:
  """An `InputError` naming the problem unless `clips` are model inputs of `stream`.

  Checks, in order: a real floating dtype, shape (batch, frames, 224, 224, channels), at least
  one clip, at least `min_frames` frames, and only finite values. Every entry point (the
  classifier, `.npz` caches, `.npy` samples, predict and evaluate) applies it.

  Args:
    clips: an array, or anything NumPy reads as one (an eager tensor).
    stream: "rgb" or "flow".
    name: what the clips came from, to start the message (default: the stream).
    min_frames: the fewest frames accepted; shorter clips are looped by `i3d.inputs.views`.
  """
  channels = STREAM_CHANNELS[stream]
  what = f"{name}: {stream} input" if name else f"{stream} input"
  expected = f"(clips, frames, {INPUT_SIZE}, {INPUT_SIZE}, {channels})"
  clips = np.asarray(clips)
  if clips.dtype.kind != "f":
    raise InputError(f"{what} has dtype {clips.dtype}; expected float values in [-1, 1]")
  shape = clips.shape
  if len(shape) != 5 or shape[2:] != (INPUT_SIZE, INPUT_SIZE, channels):
    raise InputError(f"{what} has shape {shape}; expected {expected}")
  if shape[0] < 1 or shape[1] < max(min_frames, 1):
    raise InputError(f"{what} has {shape[0]} clips of {shape[1]} frames; the model needs at "
                     f"least one clip of {max(min_frames, 1)} frames (shorter videos are looped "
                     f"by i3d.inputs.views.loop_to_length)")
  if not np.isfinite(clips).all():
    raise InputError(f"{what} holds NaN or infinite values")

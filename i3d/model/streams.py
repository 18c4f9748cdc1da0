"""Facts about the two I3D streams and the released evaluation types (no TensorFlow needed),
and the model's input specification (`InputSpec`): the one check every entry point, the network
included, applies to model inputs."""

import dataclasses
import os
from collections.abc import Sequence
from typing import Optional

import numpy as np

from i3d.errors import InputError, UserError

STREAMS = ("rgb", "flow")
# The network's endpoints in order (`i3d.model.network`), named as the released graph names them.
VALID_ENDPOINTS = (
    "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
    "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
    "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c", "Logits", "Predictions",
)
# Fine-tuning's --freeze_until: nothing frozen, or every layer up to and including an endpoint.
FREEZABLE = ("none", *VALID_ENDPOINTS[:VALID_ENDPOINTS.index("Mixed_5c") + 1])
# Input channels: RGB, or the horizontal and vertical components of optical flow.
STREAM_CHANNELS = {"rgb": 3, "flow": 2}
# Name scope of each stream's tower in the released joint graph (`RGB/inception_i3d/...`).
STREAM_SCOPE = {"rgb": "RGB", "flow": "Flow"}
# Spatial size of the released models' inputs (a centre crop of frames resized to 256).
INPUT_SIZE = 224
# The shortest clip the Logits head accepts: its 2x7x7 VALID average pool needs Mixed_5c of at
# least 2 steps at the network's temporal stride of 8. Shorter clips are looped to this.
MIN_FRAMES = 9
# The smallest frames the Logits head accepts: its 2x7x7 VALID average pool needs Mixed_5c of at
# least 7x7, i.e. ceil(H / 32) >= 7. With spatial_squeeze there must be one logit per location,
# so at most INPUT_SIZE.
MIN_SIZE_FOR_LOGITS = 193
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


@dataclasses.dataclass(frozen=True)
class InputSpec:
  """What I3D takes, and the one check of it: float clips (clips, frames, height, width,
  channels) in [-1, 1] with only finite values.

  `channels` are 3 (RGB), 2 (flow) or None (either). `size` is the frame size required (the
  released inputs: INPUT_SIZE square), or None for any the endpoint takes. With `logits` (the
  `Logits` endpoint is computed) frames need MIN_SIZE_FOR_LOGITS pixels a side, and at most
  INPUT_SIZE with `spatial_squeeze` (one logit per location). `min_frames` is the fewest frames
  accepted: MIN_FRAMES for the logits, fewer where clips are looped later (`i3d.inputs.views`).
  """
  channels: Optional[int] = None
  size: Optional[int] = INPUT_SIZE
  logits: bool = True
  spatial_squeeze: bool = True
  min_frames: int = MIN_FRAMES

  @classmethod
  def of(cls, stream: str, min_frames: int = MIN_FRAMES) -> "InputSpec":
    """The released inputs of `stream`."""
    return cls(STREAM_CHANNELS[stream], min_frames=min_frames)

  def check(self, clips, what: str) -> None:
    """An `InputError` naming the problem unless `clips` (an array, or anything NumPy reads as
    one) fit; `what` starts the message ("rgb input"). Checks, in order: a real floating dtype,
    the shape (`check_shape`) and only finite values."""
    clips = np.asarray(clips)
    if clips.dtype.kind != "f":
      raise InputError(f"{what} has dtype {clips.dtype}; expected float values in [-1, 1]")
    self.check_shape(clips.shape, what)
    if not np.isfinite(clips).all():
      raise InputError(f"{what} holds NaN or infinite values")

  def check_shape(self, shape: Sequence[Optional[int]], what: str) -> None:
    """An `InputError` unless `shape` (None where unknown) fits: rank 5, the channels, the frame
    size, at least one clip of `min_frames` frames."""
    shape = tuple(shape)
    expected = (f"(clips, frames, {'H, W' if self.size is None else f'{self.size}, {self.size}'}"
                f", {self.channels or 'C'})")
    if len(shape) != 5 or shape[-1] is None or self.channels not in (None, shape[-1]):
      raise InputError(f"{what} has shape {shape} (rank {len(shape)}); expected {expected}"
                       + (f" (built for {self.channels} input channels: RGB has 3, optical "
                          f"flow 2)" if self.channels else ""))
    clips, frames, height, width, _ = shape
    if self.size is not None and (height, width) != (self.size, self.size):
      raise InputError(f"{what} has shape {shape}; expected {expected}")
    for size, side in ((height, "height"), (width, "width")):
      if size is not None and self.logits and size < MIN_SIZE_FOR_LOGITS:
        raise InputError(f"{what}: the Logits need a {side} of at least {MIN_SIZE_FOR_LOGITS} "
                         f"pixels; got {size} (the released models use 224x224)")
      if size is not None and self.logits and self.spatial_squeeze and size > INPUT_SIZE:
        raise InputError(f"{what}: spatial_squeeze needs a {side} of {MIN_SIZE_FOR_LOGITS} to "
                         f"{INPUT_SIZE} pixels (one logit per location); got {size}: crop to "
                         f"224 or pass spatial_squeeze=False")
    if clips == 0 or (frames is not None and frames < max(self.min_frames, 1)):
      raise InputError(f"{what} has {clips} clips of {frames} frames; the model needs at least "
                       f"one clip of {max(self.min_frames, 1)} frames (I3D's Logits need at "
                       f"least {MIN_FRAMES} frames; shorter videos are looped by "
                       f"i3d.inputs.views.loop_to_length)")

"""Facts about the two I3D streams and the released evaluation types (no TensorFlow needed)."""

from i3d.errors import UserError

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

"""What turns a video into model inputs: the released preprocessing constants and the settings
a user can change (trim window, flow backend, TV-L1 parameters, the JPEG qualities of records).
No TensorFlow needed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from i3d._util.files import file_sha256
from i3d.errors import UserError
from i3d.model.streams import INPUT_SIZE

FPS = 25.0
RESIZE_SHORT_SIDE = 256
CROP_SIZE = INPUT_SIZE
FLOW_BACKENDS = ("tf", "opencv")
# Flow is truncated to [-20, 20] pixels and rescaled to [-1, 1], as released.
FLOW_BOUND = 20.0
CACHE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class TVL1Params:
  """DualTVL1 parameters; the defaults are OpenCV's."""
  tau: float = 0.25
  lambda_: float = 0.15
  theta: float = 0.3
  scales: int = 5
  warps: int = 5
  epsilon: float = 0.01
  inner_iterations: int = 30
  outer_iterations: int = 10
  scale_step: float = 0.8
  median_filtering: int = 5


@dataclasses.dataclass(frozen=True)
class InputSettings:
  """Everything that changes the inputs computed from a video."""
  time_start: float | None = None
  time_end: float | None = None
  flow_backend: str = "tf"
  flow_params: TVL1Params = TVL1Params()

  def record(self, source: Path) -> dict:
    """The JSON-able record stored in (and compared against) a cache for video `source`."""
    return {"format": CACHE_FORMAT, "fps": FPS, "resize": RESIZE_SHORT_SIDE,
            "crop": CROP_SIZE, "time_start": self.time_start, "time_end": self.time_end,
            "flow_backend": self.flow_backend, "flow_params": dataclasses.asdict(self.flow_params),
            "video_sha256": file_sha256(source)}


@dataclasses.dataclass(frozen=True)
class Encoding:
  """JPEG qualities of the stored images of MediaSequence records (`i3d.inputs.records`;
  chosen by the fidelity measured in BENCHMARKS.md).

  Chroma is never subsampled: flow's two channels would be blurred into each other.
  """
  rgb_quality: int = 90
  flow_quality: int = 95

  def __post_init__(self):
    for quality in (self.rgb_quality, self.flow_quality):
      if not 1 <= quality <= 100:
        raise UserError(f"JPEG quality must be in 1..100, got {quality}")

"""Whole-clip logits of a clip of any length, in the memory of a fixed number of frames.

The released protocol runs the whole clip through the network at once, so memory grows with
its length. The backbone's outputs depend on a limited window of frames: `Mixed_5c` step m (one
step per 8 frames) sees at most frames 8m - 47 to 8m + 54. So a long clip runs in overlapping
chunks of at most `budget` frames whose halo covers that receptive field, each keeping only the
steps of `Mixed_5c` that saw no padding of its own (the first and last chunk start and end where
the clip does, so they see the clip's own padding), and the logits head runs once on the joined
`Mixed_5c`. Two things keep the chunks' sampling grid that of the whole clip: chunks start at a
multiple of the network's temporal stride of 8, and every chunk's length has the clip's length
modulo 8 (SAME padding of the stride-2 layers depends on it). The result equals one pass to
float32 round-off (tests/conformance).

To keep the joined `Mixed_5c` small (a clip of an hour has 11,250 steps), each chunk's steps are
averaged over space first, the spatial half of the head's 2x7x7 average pool (the released
inputs give a 7x7 `Mixed_5c`); the head then pools pairs of steps.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable, Mapping

import numpy as np

from i3d.errors import UserError

TEMPORAL_STRIDE = 8
# Input frames before and after a kept step's own 8 frames that its receptive field reaches
# (rounded up to the stride): step m depends on frames 8m - 47 ... 8m + 54 at most.
HALO_BEFORE = 48
HALO_AFTER = 56
# The smallest budget: both halos, one kept step and the length's residue modulo 8.
MIN_BUDGET = HALO_BEFORE + HALO_AFTER + 2 * TEMPORAL_STRIDE - 1


class FrameCountError(ValueError):
  """Frames arrived that do not fit a plan made from a count of them (more, or fewer, than
  counted: a video that decodes differently the second time)."""


@dataclasses.dataclass(frozen=True)
class Chunk:
  """Input frames [start, stop) of one pass, and the `Mixed_5c` steps [keep_start, keep_stop) of
  the clip it contributes."""
  start: int
  stop: int
  keep_start: int
  keep_stop: int


def steps(frames: int) -> int:
  """`Mixed_5c` steps of a clip of `frames` frames (three stride-2 layers, SAME padding)."""
  return math.ceil(frames / TEMPORAL_STRIDE)


def plan(frames: int, budget: int) -> list[Chunk]:
  """The chunks of a clip of `frames` frames, each at most `budget` frames (one chunk when it
  fits). A budget under `MIN_BUDGET` is a `UserError`."""
  if frames <= budget:
    return [Chunk(0, frames, 0, steps(frames))]
  if budget < MIN_BUDGET:
    raise UserError(f"a chunk budget of {budget} frames ($I3D_CHUNK_FRAMES) is too small: "
                    f"chunks need at least {MIN_BUDGET}")
  residue = frames % TEMPORAL_STRIDE
  per_chunk = (budget - HALO_BEFORE - HALO_AFTER - residue) // TEMPORAL_STRIDE
  chunks = []
  for keep_start in range(0, steps(frames), per_chunk):
    keep_stop = min(keep_start + per_chunk, steps(frames))
    start = max(0, TEMPORAL_STRIDE * keep_start - HALO_BEFORE)
    stop = min(frames, TEMPORAL_STRIDE * keep_stop + HALO_AFTER + residue)
    chunks.append(Chunk(start, stop, keep_start, keep_stop))
  return chunks


# Runs one stream's backbone on clips (B, T, H, W, C): `Mixed_5c` averaged over space,
# (B, steps, 1, 1, channels).
Backbone = Callable[[np.ndarray], np.ndarray]
# Runs one stream's logits head on the joined output of its backbone: (B, num_classes).
Head = Callable[[np.ndarray], np.ndarray]


class ChunkedClip:
  """Feeds blocks of a whole clip through the backbones chunk by chunk as they arrive, keeping
  only the frames the next chunks need; `logits()` runs the heads once at the end.

  Args:
    frames: the clip's length (the plan depends on it: count it first).
    budget: frames per pass.
    backbones: {stream: `Backbone`}.
    heads: {stream: `Head`}.
  """

  def __init__(self, frames: int, budget: int, backbones: Mapping[str, Backbone],
               heads: Mapping[str, Head]):
    self.frames = frames
    self.chunks = deque(plan(frames, budget))
    self.backbones, self.heads = backbones, heads
    self.pieces: deque[tuple[int, dict[str, np.ndarray]]] = deque()  # (first frame, arrays)
    self.received = 0
    self.kept: dict[str, list[np.ndarray]] = {s: [] for s in backbones}

  def add(self, arrays: Mapping[str, np.ndarray]) -> None:
    """The next frames {stream: (B, k, H, W, C)}; runs every chunk they complete."""
    length = next(iter(arrays.values())).shape[1]
    if self.received + length > self.frames:
      raise FrameCountError(f"more than the {self.frames} frames counted")
    self.pieces.append((self.received, dict(arrays)))
    self.received += length
    while self.chunks and self.chunks[0].stop <= self.received:
      self._run(self.chunks.popleft())
    first = self.chunks[0].start if self.chunks else self.received
    while self.pieces and self.pieces[0][0] + _length(self.pieces[0][1]) <= first:
      self.pieces.popleft()

  def _run(self, chunk: Chunk) -> None:
    for stream, backbone in self.backbones.items():
      parts = [a[stream][:, max(0, chunk.start - s):chunk.stop - s] for s, a in self.pieces
               if s < chunk.stop and s + _length(a) > chunk.start]
      pooled = backbone(np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0])
      offset = chunk.start // TEMPORAL_STRIDE
      self.kept[stream].append(pooled[:, chunk.keep_start - offset:chunk.keep_stop - offset])

  def logits(self) -> dict[str, np.ndarray]:
    """{stream: (B, num_classes)} once every frame was added."""
    if self.chunks or self.received != self.frames:
      raise FrameCountError(f"{self.received} of the {self.frames} frames counted")
    return {s: self.heads[s](np.concatenate(k, axis=1)) for s, k in self.kept.items()}


def _length(arrays: Mapping[str, np.ndarray]) -> int:
  return next(iter(arrays.values())).shape[1]

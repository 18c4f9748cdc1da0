"""Whole-clip logits of a clip of any length, in the memory of a fixed number of frames.

The released protocol runs the whole clip through the network at once, so memory grows with
its length. Each output of a convolution network depends on a limited window of its input, so a
long clip can run in overlapping chunks whose halo covers that window, each keeping only the
outputs that saw none of its own padding (the first and last chunk start and end where the clip
does, so they see the clip's own padding). Two things keep a chunk's sampling grid that of the
whole clip: chunks start at a multiple of the part's stride, and every chunk's length has the
clip's length modulo the stride (SAME padding of the stride-2 layers depends on it).

The network runs in two such parts. Its stem, up to `MaxPool3d_4a_3x3`, holds most of the
memory per frame (224x224 activations) and of the work; its steps (one per 4 frames, 14x14) are
small, so the trunk, from there to `Mixed_5c`, runs on chunks of as many steps as the stem has
frames, and only the stem's narrow halo is computed twice. The logits head runs once on the
joined `Mixed_5c`. The result equals one pass to float32 round-off (tests/conformance).

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


@dataclasses.dataclass(frozen=True)
class Grid:
  """How a part of the network maps input steps to output steps: one output step per `stride`
  inputs, and output step m depends on inputs `stride * m - before` to
  `stride * (m + 1) - 1 + after` at most (halos rounded up to the stride)."""
  stride: int
  before: int
  after: int

  def steps(self, length: int) -> int:
    """Output steps of an input of `length` steps (stride-2 layers, SAME padding)."""
    return math.ceil(length / self.stride)

  @property
  def min_chunk(self) -> int:
    """The shortest chunk: both halos, one kept step and the length's residue."""
    return self.before + self.after + 2 * self.stride - 1


# The end of the stem: frames -> its steps; step i depends on frames 4i - 11 ... 4i + 14.
STEM_END = "MaxPool3d_4a_3x3"
STEM = Grid(stride=4, before=12, after=12)
# The trunk: stem steps -> Mixed_5c steps; step m depends on stem steps 2m - 9 ... 2m + 10.
TRUNK = Grid(stride=2, before=10, after=10)
# The shortest chunk: in frames through the stem and in stem steps through the trunk.
MIN_CHUNK = max(STEM.min_chunk, TRUNK.min_chunk)
# A chunked pass also holds its input pieces and the trunk's steps, so chunks are this fraction
# of the budget, which keeps a long clip within the memory of one pass of the budget's frames
# (measured, BENCHMARKS.md).
CHUNK_FRACTION = 0.7


def chunk_length(budget: int) -> int:
  """Frames per stem pass (and stem steps per trunk pass) of a clip longer than `budget`
  frames; a budget that leaves chunks shorter than `MIN_CHUNK` is a `UserError`."""
  length = int(budget * CHUNK_FRACTION)
  if length < MIN_CHUNK:
    raise UserError(f"a chunk budget of {budget} frames ($I3D_CHUNK_FRAMES) is too small: "
                    f"give at least {math.ceil(MIN_CHUNK / CHUNK_FRACTION)}")
  return length


class FrameCountError(ValueError):
  """Frames arrived that do not fit a plan made from a count of them (more, or fewer, than
  counted: a video that decodes differently the second time)."""


@dataclasses.dataclass(frozen=True)
class Chunk:
  """Input steps [start, stop) of one pass, and the output steps [keep_start, keep_stop) of
  the clip it contributes."""
  start: int
  stop: int
  keep_start: int
  keep_stop: int


def plan(length: int, size: int, grid: Grid) -> list[Chunk]:
  """The chunks of an input of `length` steps through a part of the network with `grid`, each
  at most `size` steps (one chunk when it fits; `size` at least `grid.min_chunk`)."""
  if length <= size:
    return [Chunk(0, length, 0, grid.steps(length))]
  if size < grid.min_chunk:
    raise ValueError(f"chunks of {size} steps leave no room for the halos")
  residue = length % grid.stride
  chunks, keep_start, steps = [], 0, grid.steps(length)
  while keep_start < steps:  # each chunk keeps as many steps as its size allows
    start = max(0, grid.stride * keep_start - grid.before)
    keep_stop = min(steps, (start + size - grid.after - residue) // grid.stride)
    stop = min(length, grid.stride * keep_stop + grid.after + residue)
    chunks.append(Chunk(start, stop, keep_start, keep_stop))
    keep_start = keep_stop
  return chunks


# Runs one stream's part of the network on inputs (B, T, H, W, C): its output (B, steps, ...).
Part = Callable[[np.ndarray], np.ndarray]
# Runs one stream's logits head on the joined, space-averaged Mixed_5c: (B, num_classes).
Head = Callable[[np.ndarray], np.ndarray]
Arrays = Mapping[str, np.ndarray]  # {stream: array}, time on axis 1


class ChunkedPart:
  """Runs a part of the network on an input arriving in blocks, chunk by chunk as the blocks
  complete them, keeping only the input the next chunks need.

  Args:
    length: the input's length in steps (the plan depends on it).
    size: input steps per pass.
    grid: the part's `Grid`.
    parts: {stream: `Part`}.
  """

  def __init__(self, length: int, size: int, grid: Grid, parts: Mapping[str, Part]):
    self.length, self.grid, self.parts = length, grid, parts
    self.chunks = deque(plan(length, size, grid))
    self.pieces: deque[tuple[int, Arrays]] = deque()  # (first step, arrays)
    self.received = 0

  def add(self, arrays: Arrays) -> list[dict[str, np.ndarray]]:
    """The next input steps; returns the kept output of every chunk they complete, in order.
    More steps than `length` are a `FrameCountError`."""
    if self.received + _length(arrays) > self.length:
      raise FrameCountError(f"more than the {self.length} frames counted")
    self.pieces.append((self.received, dict(arrays)))
    self.received += _length(arrays)
    outputs = []
    while self.chunks and self.chunks[0].stop <= self.received:
      outputs.append(self._run(self.chunks.popleft()))
    first = self.chunks[0].start if self.chunks else self.received
    while self.pieces and self.pieces[0][0] + _length(self.pieces[0][1]) <= first:
      self.pieces.popleft()
    return outputs

  def _run(self, chunk: Chunk) -> dict[str, np.ndarray]:
    kept = {}
    for stream, part in self.parts.items():
      pieces = [a[stream][:, max(0, chunk.start - s):chunk.stop - s] for s, a in self.pieces
                if s < chunk.stop and s + _length(a) > chunk.start]
      output = part(np.concatenate(pieces, axis=1) if len(pieces) > 1 else pieces[0])
      offset = chunk.start // self.grid.stride
      kept[stream] = output[:, chunk.keep_start - offset:chunk.keep_stop - offset]
    return kept

  @property
  def done(self) -> bool:
    return not self.chunks and self.received == self.length


class ChunkedClip:
  """Feeds blocks of a whole clip through the stems and then the trunks chunk by chunk as they
  arrive; `logits()` runs the heads once at the end.

  Args:
    frames: the clip's length (the plan depends on it: count it first).
    budget: `$I3D_CHUNK_FRAMES`; chunks of `chunk_length(budget)` frames through the stem and
      as many stem steps through the trunk.
    stems: {stream: `Part`}, frames to the stem's output (`STEM_END`).
    trunks: {stream: `Part`}, the stem's output to Mixed_5c averaged over space,
      (B, steps, 1, 1, channels).
    heads: {stream: `Head`}.
  """

  def __init__(self, frames: int, budget: int, stems: Mapping[str, Part],
               trunks: Mapping[str, Part], heads: Mapping[str, Head]):
    self.frames = frames
    length = chunk_length(budget)
    self.stem = ChunkedPart(frames, length, STEM, stems)
    self.trunk = ChunkedPart(STEM.steps(frames), length, TRUNK, trunks)
    self.heads = heads
    self.kept: dict[str, list[np.ndarray]] = {s: [] for s in heads}

  def add(self, arrays: Arrays) -> None:
    """The next frames {stream: (B, k, H, W, C)}; runs every chunk they complete."""
    for stem_steps in self.stem.add(arrays):
      for pooled in self.trunk.add(stem_steps):
        for stream, steps in pooled.items():
          self.kept[stream].append(steps)

  def logits(self) -> dict[str, np.ndarray]:
    """{stream: (B, num_classes)} once every frame was added."""
    if not self.stem.done:
      raise FrameCountError(f"{self.stem.received} of the {self.frames} frames counted")
    return {s: self.heads[s](np.concatenate(k, axis=1)) for s, k in self.kept.items()}


def _length(arrays: Arrays) -> int:
  return next(iter(arrays.values())).shape[1]

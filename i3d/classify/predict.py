"""Classify one video: its views (cached or computed) through a classifier, top classes out.

This is evaluation of a single video under the same `ViewProtocol` that `i3d evaluate` uses.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from i3d._util import env, progress
from i3d.classify import ranking
from i3d.classify.classifier import Classifier
from i3d.errors import UserError
from i3d.inputs import decode, records, stream
from i3d.inputs import views as view_protocols
from i3d.inputs.settings import InputSettings
from i3d.inputs.stream import Inputs
from i3d.inputs.views import ViewArray, ViewProtocol, stored_inputs, views_of, window_starts
from i3d.model.chunks import FrameCountError
from i3d.model.streams import MIN_FRAMES


@dataclasses.dataclass(frozen=True)
class Prediction:
  """Top classes of one video: (index, label, probability, logit) per class, best first.

  `frames` were sampled from the video; `looped_to` is the length the model saw when the clip
  was looped up to its shortest input (or a window), else None.
  """
  source: str
  frames: int
  top: list[tuple[int, str, float, float]]
  looped_to: int | None = None

  def as_dict(self) -> dict:
    """JSON-able form."""
    return {"video": self.source, "frames": self.frames, "looped_to": self.looped_to,
            "top_k": [{"index": i, "label": label, "probability": p, "logit": logit}
                      for i, label, p, logit in self.top]}


def top_classes(logits: np.ndarray, labels: tuple[str, ...], k: int) -> list:
  """(index, label, softmax probability, logit) of the `k` best classes."""
  probabilities = ranking.softmax(logits)
  return [(int(i), labels[i], float(probabilities[i]), float(logits[i]))
          for i in ranking.top_k(logits, k)]


def predict(classifier: Classifier, source: str | Path, settings: InputSettings,
            protocol: ViewProtocol = ViewProtocol(), top_k: int = 5, use_cache: bool = True,
            view_batch: int = 4, budget: int | None = None) -> Prediction:
  """Top classes of one video (or inputs .npz) with `classifier` under `protocol` (see
  `video_logits` for `budget` and memory)."""
  logits, frames, seen = video_logits(classifier, source, settings, protocol, use_cache,
                                      view_batch, budget)
  return Prediction(str(source), frames, top_classes(ranking.fuse(logits), classifier.labels,
                                                     top_k), seen if seen > frames else None)


def video_logits(classifier: Classifier, source: str | Path, settings: InputSettings,
                 protocol: ViewProtocol = ViewProtocol(), use_cache: bool = True,
                 view_batch: int = 4,
                 budget: int | None = None) -> tuple[dict[str, np.ndarray], int, int]:
  """Per-stream logits (num_classes,) of one video averaged over its views under `protocol`.

  Inputs computed earlier (an inputs .npz, or the cache beside the video) are used as stored.
  Otherwise the video streams through `i3d.inputs.stream`, so memory does not grow with its
  length: the whole clip runs in chunks of `budget` frames beyond that many (default
  `$I3D_CHUNK_FRAMES`, same logits; `Classifier.clip_logits`), and windows are classified as
  their frames arrive, with TV-L1 run only for the frames they hold. Both count the frames
  first when they need the clip's length (a decoding pass without conversion).

  Returns:
    (logits by stream, frames sampled from the video, frames per view the model saw: more than
    the video's when it was looped to the model's shortest input or to a window).
  """
  source = Path(source)
  streams = classifier.streams
  found = stored_inputs(source, settings, streams, protocol.crops, use_cache)
  length = protocol.window_frames if protocol.windows else MIN_FRAMES
  frames = next(iter(found.values())).shape[1] if found is not None else None
  if found is None and protocol.windows:
    frames = decode.count_frames(source, settings.time_start, settings.time_end)
  if found is None and frames is not None and frames < length:  # short: looped as a whole
    found = stream.stacked(stream.video_inputs(source, settings, streams, protocol.crops))
  try:
    held: list[Inputs] = []
    # A streamed whole clip: held when it fits the budget, else counted and run in chunks.
    if found is None and not protocol.windows:
      budget = budget or env.limit("I3D_CHUNK_FRAMES")
      inputs = iter(stream.video_inputs(source, settings, streams, protocol.crops))
      for item in inputs:
        held.append(item)
        if sum(map(len, held)) > budget:
          break
      else:
        found = stream.stacked(held)
    if found is not None:
      frames = next(iter(found.values())).shape[1]
      if protocol.windows:
        return classifier.view_logits(views_of(found, protocol), view_batch), frames, length
      whole = {s: view_protocols.whole_clips(c) for s, c in found.items()}
      logits = classifier.clip_logits([whole], max(frames, length), budget)
      return {s: v.mean(axis=0) for s, v in logits.items()}, frames, max(frames, length)
    if protocol.windows:
      assert frames is not None
      return _windows(classifier, source, settings, protocol, frames, view_batch), frames, length
    frames = decode.count_frames(source, settings.time_start, settings.time_end)
    blocks = (item.arrays for item in itertools.chain(held, inputs))
    logits = classifier.clip_logits(blocks, frames, budget)
    return {s: v.mean(axis=0) for s, v in logits.items()}, frames, frames
  except FrameCountError as e:
    raise UserError(f"{source}: {e} (a damaged video? decoding gave another count than the "
                    f"first pass)") from None


def _windows(classifier: Classifier, source: Path, settings: InputSettings,
             protocol: ViewProtocol, frames: int, view_batch: int) -> dict[str, np.ndarray]:
  """Logits averaged over the `protocol` windows of a streamed video of `frames` frames (at
  least one window long): TV-L1 only for frames in windows, each window classified (`view_batch`
  views at a time) as soon as its frames are in."""
  length = protocol.window_frames
  starts = window_starts(frames, length, protocol.windows)
  wanted = {int(f) for s in starts for f in range(s, s + length)}
  inputs = stream.video_inputs(source, settings, classifier.streams, protocol.crops,
                               wanted.__contains__)
  pending: list[dict[str, np.ndarray]] = []
  logits: list[dict[str, np.ndarray]] = []

  def flush() -> None:
    batch = {s: np.concatenate([p[s] for p in pending]) for s in classifier.streams}
    logits.append({s: v.numpy() for s, v in classifier.stream_logits(**batch).items()})
    pending.clear()

  with progress.bar(len(starts), "classifying", "window") as bar:
    for window in stream.windows(inputs, length, starts=list(starts)):
      if pending and (len(pending) + 1) * protocol.crops > view_batch:  # each window: crops views
        flush()
      pending.append(window.arrays)
      bar.update()
    flush()
  return {s: np.concatenate([c[s] for c in logits]).mean(axis=0) for s in classifier.streams}


def predict_views(classifier: Classifier, views: Mapping[str, ViewArray], source: str,
                  top_k: int = 5, view_batch: int = 4) -> Prediction:
  """Top classes of one clip's model inputs {stream: (views, T, 224, 224, C)}."""
  logits = ranking.fuse(classifier.view_logits(views, view_batch))
  return Prediction(source, next(iter(views.values())).shape[1],
                    top_classes(logits, classifier.labels, top_k))


def is_records(source: str | Path) -> bool:
  """Whether `source` is a records shard or a folder of them (`i3d preprocess --output_dir`)."""
  source = Path(source)
  return records.is_shard_name(source.name) or (source.is_dir() and bool(
      records.list_shards(source)))


def predict_records(classifier: Classifier, source: str | Path,
                    protocol: ViewProtocol = ViewProtocol(), top_k: int = 5,
                    view_batch: int = 4) -> Iterator[Prediction | str]:
  """Top classes of every clip in a shard or a folder of shards (named `SHARD:KEY`); a shard
  that cannot be read yields its error (a line naming it)."""
  source = Path(source)
  shards = records.list_shards(source) if source.is_dir() else [source]
  damaged = False
  for item in records.read_clips(shards, classifier.streams, protocol):
    if isinstance(item, records.ReadError):
      damaged = True
      continue
    yield predict_views(classifier, item.inputs, f"{Path(item.shard).name}:{item.info.key}",
                        top_k, view_batch)
  if damaged:
    for shard in shards:
      try:
        records.check_shard(shard, classifier.streams)
      except UserError as e:
        yield str(e)

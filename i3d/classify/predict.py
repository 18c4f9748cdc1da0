"""Classify one video: its views (cached or computed) through a classifier, top classes out.

This is evaluation of a single video under the same `ViewProtocol` that `i3d evaluate` uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from i3d.classify import ranking
from i3d.classify.classifier import Classifier
from i3d.errors import UserError
from i3d.inputs import records
from i3d.inputs.settings import InputSettings
from i3d.inputs.views import ViewArray, ViewProtocol, cropped_inputs, views_of


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
            view_batch: int = 4) -> Prediction:
  """Top classes of one video (or inputs .npz) with `classifier` under `protocol`."""
  crops = cropped_inputs(source, settings, classifier.streams, protocol.crops, use_cache)
  return predict_views(classifier, views_of(crops, protocol), str(source), top_k, view_batch,
                       frames=next(iter(crops.values())).shape[1])


def predict_views(classifier: Classifier, views: Mapping[str, ViewArray], source: str,
                  top_k: int = 5, view_batch: int = 4, frames: int | None = None) -> Prediction:
  """Top classes of one clip's model inputs {stream: (views, T, 224, 224, C)}; `frames`, when
  known, is how many frames the clip had before views looped it."""
  logits = ranking.fuse(classifier.view_logits(views, view_batch))
  seen = next(iter(views.values())).shape[1]
  frames = seen if frames is None else frames
  return Prediction(source, frames, top_classes(logits, classifier.labels, top_k),
                    seen if seen > frames else None)


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

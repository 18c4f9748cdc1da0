"""Classify one video: its views (cached or computed) through a classifier, top classes out.

This is evaluation of a single video under the same `Protocol` that `i3d evaluate` uses.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from i3d.classify import ranking
from i3d.classify.classifier import Classifier
from i3d.inputs.settings import InputSettings
from i3d.inputs.views import Protocol, cropped_inputs, views_of


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
            protocol: Protocol = Protocol(), top_k: int = 5, use_cache: bool = True,
            view_batch: int = 4) -> Prediction:
  """Top classes of one video (or inputs .npz) with `classifier` under `protocol`."""
  crops = cropped_inputs(source, settings, classifier.streams, protocol.crops, use_cache)
  views = views_of(crops, protocol)
  logits = ranking.fuse(classifier.view_logits(views, view_batch))
  frames, seen = next(iter(crops.values())).shape[1], next(iter(views.values())).shape[1]
  return Prediction(str(source), frames, top_classes(logits, classifier.labels, top_k),
                    seen if seen > frames else None)

"""Classify videos: inputs (cached or computed) through a classifier, whole clip or windows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from i3d import inputs, metrics, video
from i3d.errors import UserError


@dataclasses.dataclass(frozen=True)
class Prediction:
  """Top classes of one video: (index, label, probability, logit) per class, best first."""
  source: str
  frames: int
  top: list[tuple[int, str, float, float]]

  def as_dict(self) -> dict:
    """JSON-able form."""
    return {"video": self.source, "frames": self.frames,
            "top_k": [{"index": i, "label": label, "probability": p, "logit": logit}
                      for i, label, p, logit in self.top]}


def video_inputs(source: str | Path, streams: tuple[str, ...], settings: inputs.InputSettings,
                 use_cache: bool = True) -> dict[str, np.ndarray]:
  """Inputs of a video, or of an inputs `.npz` given directly, looped to the network's minimum.

  A video reuses `clip_inputs.npz` beside it when that was made with the same settings.
  """
  source = Path(source)
  if source.suffix == ".npz":
    clips, _ = inputs.load_inputs(source)
    missing = [s for s in streams if s not in clips]
    if missing:
      raise UserError(f"{source}: has no {' or '.join(missing)} input")
  else:
    cache = inputs.default_cache_path(source) if use_cache else None
    clips = inputs.cached_inputs(source, settings, streams, cache)
  return {s: video.loop_to_length(clips[s][0], video.MIN_FRAMES)[None] for s in streams}


def clip_logits(classifier, clips: dict[str, np.ndarray], windows: int = 0,
                window_frames: int = 64) -> np.ndarray:
  """Logits (num_classes,) of the whole clip, or averaged over `windows` uniform windows."""
  if windows <= 0:
    return classifier(**clips).numpy()[0]
  batches = {s: video.windows(c[0], windows, window_frames) for s, c in clips.items()}
  return classifier(**batches).numpy().mean(axis=0)


def top_classes(logits: np.ndarray, labels: tuple[str, ...], k: int) -> list:
  """(index, label, softmax probability, logit) of the `k` best classes."""
  probabilities = metrics.softmax(logits)
  order = np.argsort(-logits, kind="stable")[:k]
  return [(int(i), labels[i], float(probabilities[i]), float(logits[i])) for i in order]


def predict(classifier, source: str | Path, settings: inputs.InputSettings, top_k: int = 5,
            windows: int = 0, window_frames: int = 64, use_cache: bool = True) -> Prediction:
  """Top classes of one video (or inputs .npz) with `classifier`."""
  clips = video_inputs(source, classifier.streams, settings, use_cache)
  logits = clip_logits(classifier, clips, windows, window_frames)
  frames = next(iter(clips.values())).shape[1]
  return Prediction(str(source), frames, top_classes(logits, classifier.labels, top_k))

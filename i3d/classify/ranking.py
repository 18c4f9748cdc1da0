"""Scores to classes: softmax and stable top-k ranking, in plain NumPy (no TensorFlow)."""

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
  """Class probabilities of logits (..., C), computed stably in the logits' precision."""
  shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
  return shifted / shifted.sum(axis=-1, keepdims=True)


def fuse(stream_logits: dict[str, np.ndarray]) -> np.ndarray:
  """Two-stream fusion as released: the sum of the streams' logits."""
  return np.sum(list(stream_logits.values()), axis=0)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
  """The `k` best class indices along the last axis of `scores`, best first.

  Ties go to the lower class index, so equal scores keep the label map's order.
  """
  return np.argsort(-np.asarray(scores), axis=-1, kind="stable")[..., :k]

"""Classification metrics for Kinetics evaluation, in plain NumPy so they are easy to check by hand.

Predictions are ranked class indices, best first, shape (N, k); labels are class indices (N,).
Ranks rather than scores are the input so metrics can be recomputed from `predictions.jsonl`,
which keeps only each video's top-k.
"""

import numpy as np


def top_k_hits(predictions: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
  """Whether each label is among its row's first `k` predictions: bool (N,)."""
  predictions = np.asarray(predictions)
  if predictions.shape[-1] < k:
    raise ValueError(f"top-{k} needs at least {k} ranked predictions, got {predictions.shape[-1]}")
  return (predictions[:, :k] == np.asarray(labels)[:, None]).any(axis=1)


def top_k_accuracy(predictions: np.ndarray, labels: np.ndarray, k: int) -> float:
  """Share of videos whose label is in their top `k` (nan for no videos)."""
  hits = top_k_hits(predictions, labels, k)
  return float(hits.mean()) if hits.size else float("nan")


def per_class_accuracy(top1: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
  """Top-1 accuracy of each class (C,); nan for classes with no video."""
  return class_accuracy(confusion_matrix(top1, labels, num_classes))


def class_accuracy(confusion: np.ndarray) -> np.ndarray:
  """Per-class top-1 accuracy (C,) of a confusion matrix; nan for classes with no video."""
  totals = confusion.sum(axis=1).astype(float)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(totals > 0, np.diag(confusion) / totals, np.nan)


def mean_class_accuracy(per_class: np.ndarray) -> float:
  """Mean of the per-class accuracies over classes that have videos."""
  present = per_class[~np.isnan(per_class)]
  return float(present.mean()) if present.size else float("nan")


def challenge_error(top1: float, top5: float) -> float:
  """The ActivityNet Kinetics challenge figure: mean of the top-1 and top-5 errors."""
  return ((1.0 - top1) + (1.0 - top5)) / 2.0


def confusion_matrix(top1: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
  """Counts (C, C): row = true class, column = top-1 prediction."""
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (np.asarray(labels), np.asarray(top1)), 1)
  return matrix


def confused_pairs(confusion: np.ndarray, count: int) -> list[tuple[int, int, int]]:
  """The `count` most frequent mistakes as (true, predicted, videos), most first, then by index."""
  off = confusion.copy()
  np.fill_diagonal(off, 0)
  true, predicted = np.nonzero(off)
  order = np.lexsort((predicted, true, -off[true, predicted]))[:count]
  return [(int(true[i]), int(predicted[i]), int(off[true[i], predicted[i]])) for i in order]


def most_confused_classes(pairs: list[tuple[int, int, int]], count: int) -> list[int]:
  """Up to `count` distinct classes taking part in the given confused pairs, in pair order."""
  return list(dict.fromkeys(c for true, predicted, _ in pairs for c in (true, predicted)))[:count]


def summarize(predictions: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
              num_pairs: int = 20) -> dict:
  """Every reported metric as a JSON-able dict (accuracies are fractions in [0, 1]), of ranked
  predictions (N, k >= 5, or every class of a set of fewer) against labels (N,); with fewer than
  5 classes every label is within the top 5."""
  predictions, labels = np.asarray(predictions), np.asarray(labels)
  confusion = confusion_matrix(predictions[:, 0], labels, len(class_names))
  top5_hits = int(top_k_hits(predictions, labels, min(5, len(class_names))).sum())
  totals = confusion.sum(axis=1)
  videos = int(totals.sum())
  top1 = float(np.trace(confusion) / videos) if videos else float("nan")
  top5 = float(top5_hits / videos) if videos else float("nan")
  per_class = class_accuracy(confusion)
  pairs = confused_pairs(confusion, num_pairs)
  shown = most_confused_classes(pairs, 10)
  return {
      "top1": top1, "top5": top5, "mean_class_accuracy": mean_class_accuracy(per_class),
      "challenge_error": challenge_error(top1, top5),
      "per_class_accuracy": {class_names[c]: float(per_class[c])
                             for c in np.flatnonzero(~np.isnan(per_class))},
      "per_class_videos": {class_names[c]: int(n) for c, n in enumerate(totals) if n},
      "confused_pairs": [{"true": class_names[t], "predicted": class_names[p], "videos": n}
                         for t, p, n in pairs],
      "confusion": {"classes": [class_names[c] for c in shown],
                    "counts": confusion[np.ix_(shown, shown)].tolist()},
  }

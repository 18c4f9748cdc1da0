"""Metrics against hand computations on tiny hand-made examples."""

import math

import numpy as np
import pytest

from i3d.kinetics import metrics

NAMES = ("a", "b", "c", "d", "e", "f")
# Five videos, six classes; rows are ranked predictions, best first.
PREDICTIONS = np.array([[0, 1, 2, 3, 4],    # label 0: top-1 hit
                        [2, 0, 1, 3, 4],    # label 1: top-5 hit (rank 3)
                        [1, 2, 3, 4, 5],    # label 0: miss
                        [2, 1, 0, 3, 4],    # label 2: top-1 hit
                        [0, 1, 2, 3, 4]])   # label 5: miss, confused with 0
LABELS = np.array([0, 1, 0, 2, 5])


def test_top_k_accuracy_by_hand():
  assert metrics.top_k_accuracy(PREDICTIONS, LABELS, 1) == pytest.approx(2 / 5)
  assert metrics.top_k_accuracy(PREDICTIONS, LABELS, 5) == pytest.approx(3 / 5)
  assert metrics.top_k_accuracy(PREDICTIONS, LABELS, 2) == pytest.approx(2 / 5)
  assert metrics.top_k_accuracy(PREDICTIONS, LABELS, 3) == pytest.approx(3 / 5)
  with pytest.raises(ValueError, match="top-6"):
    metrics.top_k_accuracy(PREDICTIONS, LABELS, 6)


def test_per_class_and_mean_class_accuracy_by_hand():
  per_class = metrics.per_class_accuracy(PREDICTIONS[:, 0], LABELS, 6)
  # a: 1 of 2; b: 0 of 1; c: 1 of 1; d, e: no videos; f: 0 of 1.
  np.testing.assert_array_equal(per_class, [0.5, 0.0, 1.0, np.nan, np.nan, 0.0])
  assert metrics.mean_class_accuracy(per_class) == pytest.approx((0.5 + 0 + 1 + 0) / 4)
  assert math.isnan(metrics.mean_class_accuracy(np.full(3, np.nan)))


def test_challenge_error_is_mean_of_top1_and_top5_errors():
  assert metrics.challenge_error(0.7, 0.9) == pytest.approx((0.3 + 0.1) / 2)


def test_confusion_and_most_confused_pairs_by_hand():
  labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
  top1 = np.array([1, 1, 0, 0, 2, 1, 1, 2])
  confusion = metrics.confusion_matrix(top1, labels, 3)
  np.testing.assert_array_equal(confusion, [[1, 2, 0], [1, 0, 1], [0, 2, 1]])
  # Ties in count go to the lower true class, then the lower predicted class.
  assert metrics.confused_pairs(confusion, 3) == [(0, 1, 2), (2, 1, 2), (1, 0, 1)]
  assert metrics.most_confused_classes([(0, 1, 2), (2, 1, 2), (1, 0, 1)], 2) == [0, 1]


def test_summarize_by_hand():
  summary = metrics.summarize(PREDICTIONS, LABELS, NAMES, num_pairs=5)
  assert summary["top1"] == pytest.approx(0.4)
  assert summary["top5"] == pytest.approx(0.6)
  assert summary["challenge_error"] == pytest.approx(0.5)
  assert summary["mean_class_accuracy"] == pytest.approx(0.375)
  assert summary["per_class_accuracy"] == {"a": 0.5, "b": 0.0, "c": 1.0, "f": 0.0}
  assert summary["per_class_videos"] == {"a": 2, "b": 1, "c": 1, "f": 1}
  assert summary["confused_pairs"] == [
      {"true": "a", "predicted": "b", "videos": 1}, {"true": "b", "predicted": "c", "videos": 1},
      {"true": "f", "predicted": "a", "videos": 1}]
  assert summary["confusion"]["classes"] == ["a", "b", "c", "f"]
  assert summary["confusion"]["counts"] == [[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0], [1, 0, 0, 0]]


def test_summarize_with_no_videos_gives_nan_not_an_error():
  summary = metrics.summarize(np.zeros((0, 5), np.int64), np.zeros(0, np.int64), NAMES)
  assert math.isnan(summary["top1"]) and summary["confused_pairs"] == []


def test_a_set_of_fewer_than_five_classes_has_every_label_in_its_top_5():
  ranked = np.array([[0, 1, 2], [2, 0, 1], [1, 2, 0]])  # every class ranked; top-1 right once
  summary = metrics.summarize(ranked, np.array([0, 1, 2]), ("a", "b", "c"))
  assert summary["top1"] == pytest.approx(1 / 3) and summary["top5"] == 1.0

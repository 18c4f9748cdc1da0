"""Softmax and stable top-k ranking."""

import numpy as np

from i3d.classify import ranking


def test_ranked_classes_orders_scores_and_breaks_ties_by_index():
  scores = np.array([[0.1, 0.5, 0.5, -1.0], [3.0, 2.0, 1.0, 0.0]])
  np.testing.assert_array_equal(ranking.top_k(scores, 3), [[1, 2, 0], [0, 1, 2]])


def test_top_k_keeps_tied_classes_in_label_map_order():
  logits = np.array([1.0, 3.0, 3.0, 0.5, 3.0], np.float32)
  assert ranking.top_k(logits, 4).tolist() == [1, 2, 4, 0]


def test_softmax_matches_the_closed_form_and_survives_large_logits():
  logits = np.array([[0.0, np.log(3.0)], [1000.0, 1000.0]])
  np.testing.assert_allclose(ranking.softmax(logits), [[0.25, 0.75], [0.5, 0.5]])

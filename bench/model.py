"""Benchmark I3D inference: clips/s and effective GFLOP/s against this machine's matmul peak.

    python -m bench.model            # default run (~10 min on 2 CPU cores)
    python -m bench.model --quick    # RGB, 64 frames, batch 1 only

Candidates run round-robin in one process, so a shared machine's noise hits them alike; each
cell reports the best and the median of `--repeats` timed runs after one warm-up run.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

import i3d  # before tensorflow: i3d turns TensorFlow's oneDNN kernels on
from i3d.model.registry import CHECKPOINTS
from i3d.model.streams import STREAM_CHANNELS, checkpoint_names
from i3d.testing import write_format_exact_checkpoint

INDEX_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "checkpoint_index"


def matmul_peak_gflops(n: int = 4096, repeats: int = 5) -> float:
  """Best float32 GFLOP/s of an n x n matrix multiply, TensorFlow's own kernels."""
  a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
  matmul = tf.function(tf.linalg.matmul)
  return 2 * n ** 3 / 1e9 / min(timed(lambda: matmul(a, b).numpy(), repeats))


def timed(run: Callable[[], object], repeats: int) -> list[float]:
  """Seconds of each of `repeats` runs of `run`."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return times


def conv_gflop(eval_type: str, frames: int, batch: int, size: int = 224) -> float:
  """Multiply-adds x 2 of every convolution of `eval_type`'s towers, counted from the graph."""
  total = 0
  for stream in checkpoint_names(eval_type):
    model = i3d.InceptionI3d(CHECKPOINTS[checkpoint_names(eval_type)[stream]].num_classes)
    spec = tf.TensorSpec([batch, frames, size, size, STREAM_CHANNELS[stream]], tf.float32)
    graph = tf.function(lambda x: model(x, is_training=False)[0]).get_concrete_function(
        spec).graph
    for op in graph.get_operations():
      if op.type == "Conv3D":
        total += np.prod(op.outputs[0].shape) * np.prod(op.inputs[1].shape[:-1])
  return 2 * total / 1e9


def make_checkpoints(root: Path) -> Path:
  """Format-exact random checkpoints of all releases: the same compute as the real ones."""
  for seed, name in enumerate(CHECKPOINTS):
    write_format_exact_checkpoint(INDEX_DIR / name / "model.ckpt", root / name, seed=seed)
  return root


def tf_candidates(eval_type: str, checkpoint_dir: Path, plain: bool) -> dict[str, Callable]:
  """`optimized` (load_classifier's default) and optionally `plain` (optimize=False) classifiers."""
  options = {"optimized": True, "plain": False} if plain else {"optimized": True}
  return {label: i3d.load_classifier(eval_type, checkpoint_dir=checkpoint_dir, download=False,
                                     optimize=optimize)
          for label, optimize in options.items()}


def torch_candidate(eval_type: str) -> Callable:
  """The PyTorch reference towers of `eval_type`, as one callable taking the TF-layout inputs."""
  import torch

  from bench.torch_i3d import TorchI3d
  towers = {s: TorchI3d(STREAM_CHANNELS[s], CHECKPOINTS[n].num_classes).eval()
            for s, n in checkpoint_names(eval_type).items()}

  def run(**clips):
    with torch.inference_mode():
      return sum(towers[s](torch.from_numpy(x).permute(0, 4, 1, 2, 3).contiguous())
                 for s, x in clips.items())
  return run


def bench_cell(candidates: dict[str, Callable], clips: dict[str, np.ndarray],
               repeats: int) -> dict[str, list[float]]:
  """Times per candidate, run round-robin after one warm-up each."""
  inputs = {s: tf.constant(x) for s, x in clips.items()}
  runs = {k: (lambda f=f: np.asarray(f(**(clips if k == "torch" else inputs))))
          for k, f in candidates.items()}
  for run in runs.values():
    run()
  times = {k: [] for k in runs}
  for _ in range(repeats):
    for k, run in runs.items():
      times[k] += timed(run, 1)
  return times


def peak_memory(eval_type: str, frames: int, checkpoint_dir: Path) -> dict:
  """Peak RSS of a fresh process running one clip, from its own /proc/self/status."""
  result = subprocess.run([sys.executable, "-m", "bench.memory", eval_type, str(frames),
                           str(checkpoint_dir)], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
  return json.loads(result.stdout.strip().splitlines()[-1])


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--cells", default="rgb:64:1,flow:64:1,joint:64:1,rgb:64:4,rgb:250:1",
                      help="comma-separated eval_type:frames:batch")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
  parser.add_argument("--memory-frames", type=int, default=250,
                      help="clip length of the peak-memory run (0 to skip)")
  parser.add_argument("--quick", action="store_true", help="rgb:64:1 only, 2 repeats")
  args = parser.parse_args(argv)
  if args.quick:
    args.cells, args.repeats, args.memory_frames = "rgb:64:1", 2, 0
  return args


def main(argv=None) -> None:
  args = parse_args(argv)
  try:
    import torch
    torch_version = None if args.no_torch else torch.__version__
  except ImportError:
    torch_version = None
  print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"TensorFlow {tf.__version__} (oneDNN {os.environ.get('TF_ENABLE_ONEDNN_OPTS')}), "
        f"PyTorch {torch_version or 'not run'}, python {platform.python_version()}")
  peak = matmul_peak_gflops()
  print(f"# float32 matmul peak (4096^3, best of 5): {peak:.1f} GFLOP/s\n")
  print("| model | T | batch | implementation | best s | median s | clips/s | GFLOP/s | "
        "% of matmul peak | vs PyTorch |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  with tempfile.TemporaryDirectory() as tmp:
    checkpoint_dir = make_checkpoints(Path(tmp))
    for cell in args.cells.split(","):
      eval_type, frames, batch = cell.split(":")
      frames, batch = int(frames), int(batch)
      candidates = tf_candidates(eval_type, checkpoint_dir, plain=(frames, batch) == (64, 1))
      if torch_version:
        candidates["torch"] = torch_candidate(eval_type)
      clips = {s: np.random.default_rng(0).uniform(-1, 1, (batch, frames, 224, 224, c)).astype(
          np.float32) for s, c in STREAM_CHANNELS.items() if s in checkpoint_names(eval_type)}
      gflop = conv_gflop(eval_type, frames, batch)
      times = bench_cell(candidates, clips, args.repeats)
      for label, ts in times.items():
        best = min(ts)
        versus = f"{min(times['torch']) / best:.2f}x" if "torch" in times else "-"
        print(f"| {eval_type} | {frames} | {batch} | {label} | {best:.2f} | "
              f"{statistics.median(ts):.2f} | {batch / best:.2f} | {gflop / best:.1f} | "
              f"{100 * gflop / best / peak:.0f}% | {versus} |", flush=True)
    if args.memory_frames:
      memory = peak_memory("rgb", args.memory_frames, checkpoint_dir)
      print(f"\n# peak memory, rgb, one {args.memory_frames}-frame clip: {json.dumps(memory)}")


if __name__ == "__main__":
  main()

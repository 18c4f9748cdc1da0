"""Benchmark I3D inference: clips/s and effective GFLOP/s against this machine's matmul peak.

    python -m bench.model            # default run (~10 min on 2 CPU cores)
    python -m bench.model --quick    # RGB, 64 frames, batch 1 only
    python -m bench.model --quick --precisions float32,bfloat16   # + bf16 and OpenVINO columns

Candidates run round-robin in one process, so a shared machine's noise hits them alike; each
cell reports the best and the median of `--repeats` timed runs after one warm-up run, and each
candidate's largest logit difference from `optimized` (float32) over its largest logit.
`openvino` (optional: `pip install -e .[bench]`) is OpenVINO's CPU plugin on this project's
exported float32 SavedModel (`ov.convert_model`), in its default precision for this CPU (bf16
where the CPU has it) and, as `openvino f32`, with its inference precision forced to float32.
"""

import argparse
import importlib
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
from i3d.model.registry import CHECKPOINTS, RELEASED
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
  for seed, name in enumerate(RELEASED):
    write_format_exact_checkpoint(INDEX_DIR / name / "model.ckpt", root / name, seed=seed)
  return root


def tf_candidates(eval_type: str, checkpoint_dir: Path, plain: bool,
                  precisions: tuple[str, ...] = ()) -> dict[str, Callable]:
  """`optimized` (load_classifier's default), optionally `plain` (optimize=False), and one
  optimized classifier per reduced precision in `precisions`."""
  options = {"optimized": (True, "float32")}
  if plain:
    options["plain"] = (False, "float32")
  options.update({p: (True, p) for p in precisions if p != "float32"})
  return {label: i3d.load_classifier(eval_type, checkpoint_dir=checkpoint_dir, download=False,
                                     optimize=optimize, precision=precision)
          for label, (optimize, precision) in options.items()}


def openvino_candidates(classifier: i3d.Classifier, clips: dict[str, np.ndarray],
                        saved_model: Path) -> dict[str, Callable]:
  """OpenVINO's CPU plugin on `classifier` exported as a SavedModel, compiled for the shapes of
  `clips`: its default precision on this CPU, and float32."""
  import openvino as ov

  from i3d.classify.export import export_saved_model
  export_saved_model(classifier, saved_model)
  model = ov.convert_model(str(saved_model))
  model.reshape({s: list(x.shape) for s, x in clips.items()})
  core = ov.Core()
  default = core.get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
  compiled = {f"openvino ({default})": core.compile_model(model, "CPU"),
              "openvino f32": core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})}

  def runner(compiled_model) -> Callable:
    request = compiled_model.create_infer_request()
    return lambda **inputs: request.infer({s: np.asarray(x) for s, x in inputs.items()})["logits"]
  return {label: runner(c) for label, c in compiled.items()}


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
               repeats: int) -> tuple[dict[str, list[float]], dict[str, float]]:
  """Times per candidate, run round-robin after one warm-up each, and each candidate's largest
  logit difference from the first candidate's over its largest logit."""
  inputs = {s: tf.constant(x) for s, x in clips.items()}
  runs = {k: (lambda f=f: np.asarray(f(**(clips if k == "torch" else inputs)), np.float32))
          for k, f in candidates.items()}
  logits = {k: run() for k, run in runs.items()}
  reference = next(iter(logits.values()))
  errors = {k: float(np.abs(v - reference).max() / np.abs(reference).max())
            for k, v in logits.items()}
  times = {k: [] for k in runs}
  for _ in range(repeats):
    for k, run in runs.items():
      times[k] += timed(run, 1)
  return times, errors


def cpu_description() -> str:
  """The CPU's model name and its reduced-precision flags, from /proc/cpuinfo."""
  from i3d._util import cpu
  from i3d.model import hardware
  flags = cpu.cpu_flags() or frozenset()
  names = [line.partition(":")[2].strip() for line in
           cpu.CPUINFO.read_text().splitlines() if line.startswith("model name")] \
      if cpu.CPUINFO.exists() else []
  precision_flags = sorted(f for fs in hardware.NATIVE_FLAGS.values() for f in fs if f in flags)
  return (f"{names[0] if names else platform.processor()}; AVX-512: {'avx512f' in flags}; "
          f"reduced-precision flags: {', '.join(precision_flags) or 'none'}")


def peak_memory(eval_type: str, frames: int, checkpoint_dir: Path) -> dict:
  """Peak RSS of a fresh process running one clip, from its own /proc/self/status."""
  result = subprocess.run([sys.executable, "-m", "bench.memory", "clip", eval_type, str(frames),
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
  parser.add_argument("--precisions", default="float32",
                      help="comma-separated load_classifier precisions to compare (float32 is "
                           "`optimized`), e.g. float32,bfloat16")
  parser.add_argument("--no-openvino", action="store_true",
                      help="skip OpenVINO (run only when it is installed)")
  args = parser.parse_args(argv)
  if args.quick:
    args.cells, args.repeats, args.memory_frames = "rgb:64:1", 2, 0
  return args


def optional_version(module: str):
  """The version of an optional dependency, or None when it is not installed."""
  try:
    return importlib.import_module(module).__version__
  except ImportError:
    return None


def main(argv=None) -> None:
  args = parse_args(argv)
  torch_version = None if args.no_torch else optional_version("torch")
  openvino_version = None if args.no_openvino else optional_version("openvino")
  print(f"# {cpu_description()}\n# {os.cpu_count()} CPUs, TensorFlow {tf.__version__} "
        f"(oneDNN {os.environ.get('TF_ENABLE_ONEDNN_OPTS')}), PyTorch {torch_version or 'not run'}"
        f", OpenVINO {openvino_version or 'not run'}, python {platform.python_version()}")
  peak = matmul_peak_gflops()
  print(f"# float32 matmul peak (4096^3, best of 5): {peak:.1f} GFLOP/s\n")
  print("| model | T | batch | implementation | best s | median s | clips/s | GFLOP/s | "
        "% of matmul peak | vs PyTorch | vs optimized | logit error |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|")
  with tempfile.TemporaryDirectory() as tmp:
    checkpoint_dir = make_checkpoints(Path(tmp))
    for cell in args.cells.split(","):
      eval_type, frames, batch = cell.split(":")
      frames, batch = int(frames), int(batch)
      candidates = tf_candidates(eval_type, checkpoint_dir, plain=(frames, batch) == (64, 1),
                                 precisions=tuple(args.precisions.split(",")))
      clips = {s: np.random.default_rng(0).uniform(-1, 1, (batch, frames, 224, 224, c)).astype(
          np.float32) for s, c in STREAM_CHANNELS.items() if s in checkpoint_names(eval_type)}
      if openvino_version:
        candidates.update(openvino_candidates(candidates["optimized"], clips,
                                              Path(tmp) / f"saved_model_{cell}"))
      if torch_version:
        candidates["torch"] = torch_candidate(eval_type)
      gflop = conv_gflop(eval_type, frames, batch)
      times, errors = bench_cell(candidates, clips, args.repeats)
      for label, ts in times.items():
        best = min(ts)
        versus = f"{min(times['torch']) / best:.2f}x" if "torch" in times else "-"
        print(f"| {eval_type} | {frames} | {batch} | {label} | {best:.2f} | "
              f"{statistics.median(ts):.2f} | {batch / best:.2f} | {gflop / best:.1f} | "
              f"{100 * gflop / best / peak:.0f}% | {versus} | "
              f"{min(times['optimized']) / best:.2f}x | "
              f"{'-' if label == 'torch' else f'{errors[label]:.1e}'} |", flush=True)
    if args.memory_frames:
      memory = peak_memory("rgb", args.memory_frames, checkpoint_dir)
      print(f"\n# peak memory, rgb, one {args.memory_frames}-frame clip: {json.dumps(memory)}")


if __name__ == "__main__":
  main()

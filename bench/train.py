"""Benchmark the training step of `i3d train` against a PyTorch I3D training step of the same
shape and batch: steps/s, examples/s, the ratio, and the hours one UCF101 epoch would take.

    pip install torch==2.13.0                     # the PyTorch side (CPU wheel)
    python -m bench.train                          # default cells, ~5 min on 2 cores
    python -m bench.train --cells 16:2:224 --repeats 5

Candidates, timed round-robin after three warm-up steps each (the first traces; PyTorch's first
two are slow too):

- `i3d train`: the step `i3d train` runs (`Trainer.step_function`: forward, cross-entropy,
  gradients, weight decay, `snt.optimizers.Momentum`), with its defaults: BatchNorm frozen,
  dropout keep 0.5, nothing frozen; one per precision when `TrainConfig` has a `precision`;
- `i3d train bn`: the same with `batchnorm="trained"` (the work PyTorch's train mode does);
- `torch`: in a process of its own (`TorchWorker`), `bench/torch_i3d.py` in train mode
  (BatchNorm on batch statistics), its head pooled over all of Mixed_5c as `i3d train`'s is (so
  smaller crops work), dropout 0.5, cross-entropy, `torch.optim.SGD` with momentum 0.9 and weight
  decay.

Inputs are in memory (the data pipeline is not timed); weights are random (same compute).
A cell is `frames:batch:crop`. PyTorch's logits are for 101 classes, `i3d train`'s for the
2 of the tiny records `Trainer` is given: a 1x1x1 convolution of 1024 channels either way,
a negligible share of the step. The projection is 9,537 clips (UCF101 split 1's
training list) of 64 frames at 224 divided by the 64-frame cell's examples/s.
"""

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

import i3d  # noqa: F401 - before TensorFlow runs: i3d turns oneDNN's kernels on
from bench.model import cpu_description, optional_version
from i3d.train import loop

UCF101_TRAIN_CLIPS = 9537  # trainlist01.txt
CLASSES = 101


def tiny_records(folder: Path) -> Path:
  """A two-class labelled records folder (`Trainer` reads its class list and clip count)."""
  import cv2
  videos = folder / "videos"
  rng = np.random.default_rng(0)
  for label in ("a", "b"):
    (videos / label).mkdir(parents=True)
    for k in range(2):
      writer = cv2.VideoWriter(str(videos / label / f"{k}.avi"),
                               cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
      for _ in range(10):
        writer.write(rng.integers(0, 255, (48, 64, 3), np.uint8))
      writer.release()
  subprocess.run([sys.executable, "-m", "i3d.cli", "preprocess", "--dataset", str(videos),
                  "--output_dir", str(folder / "records"), "--streams", "rgb", "--quiet"],
                 check=True, capture_output=True,
                 env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
  return folder / "records"


def precisions() -> tuple[str, ...]:
  """float32, and bfloat16 when `i3d train` has a precision setting."""
  fields = {f.name for f in dataclasses.fields(loop.TrainConfig)}
  return ("float32", "bfloat16") if "precision" in fields else ("float32",)


def i3d_step(records: Path, frames: int, batch: int, crop: int, **settings) -> Callable:
  """One training step of `i3d train` (its own step function) on fixed random inputs."""
  config = loop.TrainConfig(records=str(records), output_dir=str(records.parent / "run"),
                            init="scratch", clip_frames=frames, crop_size=crop, batch=batch,
                            steps=1, **settings)
  trainer = loop.Trainer(config)
  trainer.prepare()
  step = trainer.step_function()
  rng = np.random.default_rng(0)
  clips = tf.constant(rng.uniform(-1, 1, (batch, frames, crop, crop, 3)).astype(np.float32))
  labels = tf.constant(rng.integers(0, 2, batch), tf.int64)
  number = tf.constant(0, tf.int64)
  return lambda: float(step(({"rgb": clips}, labels), number)[0])


def torch_step(frames: int, batch: int, crop: int) -> Callable:
  """One training step of the PyTorch port: train mode, cross-entropy, SGD with momentum."""
  import torch
  from torch import nn

  from bench.torch_i3d import TorchI3d
  model = TorchI3d(3, CLASSES).train()
  model.pool = nn.Sequential(nn.AdaptiveAvgPool3d((None, 1, 1)), nn.AvgPool3d((2, 1, 1), 1),
                             nn.Dropout(0.5))
  optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-7)
  generator = torch.Generator().manual_seed(0)
  clips = torch.rand((batch, 3, frames, crop, crop), generator=generator) * 2 - 1
  labels = torch.randint(0, CLASSES, (batch,), generator=generator)

  def step() -> float:
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(clips), labels)
    loss.backward()
    optimizer.step()
    return float(loss.detach())
  return step


class TorchWorker:
  """The PyTorch step in its own process (as a PyTorch user runs it: no TensorFlow thread pools
  or allocator beside it, which made its steps several times slower in one process), driven
  step by step so it still interleaves with the others; each step is timed in the worker."""

  def __init__(self):
    self.process = subprocess.Popen(
        [sys.executable, "-m", "bench.train", "--torch-worker"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)

  def ask(self, line: str) -> float:
    assert self.process.stdin and self.process.stdout
    self.process.stdin.write(line + "\n")
    self.process.stdin.flush()
    return float(self.process.stdout.readline())

  def step_for(self, frames: int, batch: int, crop: int) -> Callable[[], float]:
    self.ask(f"{frames} {batch} {crop}")
    return lambda: self.ask("step")

  def close(self) -> None:
    assert self.process.stdin
    self.process.stdin.close()
    self.process.wait()


def torch_worker() -> None:
  """The worker's loop: `FRAMES BATCH CROP` builds a step (answers 0), `step` runs it (answers
  its seconds)."""
  step = None
  for line in sys.stdin:
    if line.strip() == "step":
      assert step is not None
      start = time.perf_counter()
      step()
      answer = time.perf_counter() - start
    else:
      step, answer = torch_step(*(int(v) for v in line.split())), 0.0
    print(answer, flush=True)


def bench_cell(candidates: dict[str, Callable], repeats: int,
               warmup: int = 3) -> dict[str, list[float]]:
  """Seconds per step of each candidate, round-robin, after `warmup` steps each (PyTorch's
  first two steps here take 3-10 times its later ones). A candidate returning a float reports
  its own step time (the PyTorch worker)."""
  for run in candidates.values():
    for _ in range(warmup):
      run()
  times: dict[str, list[float]] = {k: [] for k in candidates}
  for _ in range(repeats):
    for label, run in candidates.items():
      start = time.perf_counter()
      reported = run()
      elapsed = time.perf_counter() - start
      times[label].append(reported if label == "torch" else elapsed)
  return times


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--cells", default="16:4:112,16:2:224,64:1:224",
                      help="comma-separated frames:batch:crop")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
  parser.add_argument("--no-bn", action="store_true", help="skip the BatchNorm-trained row")
  parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def main(argv=None) -> None:
  args = parse_args(argv)
  if args.torch_worker:
    torch_worker()
    return
  torch_version = None if args.no_torch else optional_version("torch")
  kinds = precisions()
  print(f"# {cpu_description()}\n# {os.cpu_count()} CPUs, TensorFlow {tf.__version__}, PyTorch "
        f"{torch_version or 'not run'}; i3d train precisions: {', '.join(kinds)}"
        f"{'' if len(kinds) > 1 else ' (TrainConfig has no precision setting)'}\n")
  print("| T | batch | crop | candidate | best s/step | median s/step | steps/s | examples/s | "
        "vs PyTorch | UCF101 epoch (h) |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  worker = TorchWorker() if torch_version else None
  with tempfile.TemporaryDirectory() as tmp:
    records = tiny_records(Path(tmp))
    for cell in args.cells.split(","):
      frames, batch, crop = (int(v) for v in cell.split(":"))
      candidates = {}
      for precision in kinds:
        extra = {"precision": precision} if len(kinds) > 1 else {}
        name = "i3d train" + (f" {precision}" if len(kinds) > 1 else "")
        candidates[name] = i3d_step(records, frames, batch, crop, **extra)
      if not args.no_bn:
        candidates["i3d train bn"] = i3d_step(records, frames, batch, crop, batchnorm="trained")
      if worker:
        candidates["torch"] = worker.step_for(frames, batch, crop)
      times = bench_cell(candidates, args.repeats)
      for label, ts in times.items():
        best = min(ts)
        versus = f"{min(times['torch']) / best:.2f}x" if "torch" in times else "-"
        epoch = (f"{UCF101_TRAIN_CLIPS * best / batch / 3600:.1f}"
                 if (frames, crop) == (64, 224) else "-")
        print(f"| {frames} | {batch} | {crop} | {label} | {best:.2f} | "
              f"{statistics.median(ts):.2f} | {1 / best:.3f} | {batch / best:.2f} | {versus} | "
              f"{epoch} |", flush=True)
  if worker:
    worker.close()


if __name__ == "__main__":
  main()

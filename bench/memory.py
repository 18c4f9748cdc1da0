"""Peak memory and speed of the commands against video length and source size; and the peak
memory of classifying one clip (run by `bench.model` in a fresh process).

    python -m bench.memory [--seconds 10 60 600] [--sizes 320x240 1920x1080] \
        [--commands predict predict_windows features preprocess] [--eval_types rgb joint] \
        [--python PYTHONPATH_OF_ANOTHER_CHECKOUT]
    python -m bench.memory clip EVAL_TYPE FRAMES CHECKPOINT_DIR

The first form makes synthetic videos (ffmpeg's `testsrc2`, MPEG-4, 25 fps) of each length and
size, runs each command on each in a fresh process (`python -m i3d.cli`, format-exact
checkpoints, no `.npz` cache) and prints a markdown table: peak resident memory of the process
(its high-water mark, from `getrusage` of the child), wall seconds and frames per second (wall
time includes TensorFlow's start and the model load, a few seconds). `--python` runs the same
commands from another checkout too (e.g. the code before streaming), interleaved, for ratios.

The third form runs whole-clip logits (`Classifier.clip_logits`, random 16-frame blocks) of
clips of each length under each `$I3D_CHUNK_FRAMES` budget, one fresh process per cell, and
prints a markdown table: one pass or chunks, peak resident memory, seconds and frames/s of the
network (model load and tracing excluded):

    python -m bench.memory chunks [--frames 250 1500] [--budgets 160 320 448] [--work DIR]

The second form prints one JSON line (MiB): resident memory once the model is loaded and the clip
made, the process's high-water mark after classifying it, their difference, and the activation
memory the network needs at least (the largest input + output of any one layer, float32).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import tensorflow as tf

import i3d  # before tensorflow: i3d turns TensorFlow's oneDNN kernels on
from i3d.model.streams import STREAM_CHANNELS

MIB = 2 ** 20


def status_mib(field: str) -> float:
  """A memory field (VmRSS, VmHWM) of /proc/self/status in MiB."""
  with open("/proc/self/status") as status:
    line = next(l for l in status if l.startswith(field + ":"))
  return int(line.split()[1]) * 1024 / MIB


def min_activation_mib(model: i3d.InceptionI3d, clip_shape) -> float:
  """The largest input + output of one endpoint of `model` on a clip of `clip_shape`."""
  spec = tf.TensorSpec(clip_shape, tf.float32)
  _, endpoints = tf.function(lambda x: model(x, is_training=False)).get_concrete_function(
      spec).structured_outputs
  sizes = [np.prod(clip_shape)] + [np.prod(t.shape) for t in endpoints.values()]
  return 4 * max(a + b for a, b in zip(sizes, sizes[1:])) / MIB


def main(eval_type: str, frames: int, checkpoint_dir: str) -> None:
  clf = i3d.load_classifier(eval_type, checkpoint_dir=checkpoint_dir, download=False)
  clips = {s: np.random.default_rng(0).uniform(-1, 1, (1, frames, 224, 224, STREAM_CHANNELS[s]))
           .astype(np.float32) for s in clf.streams}
  loaded = status_mib("VmRSS")
  clf(**clips).numpy()
  peak = status_mib("VmHWM")
  needed = max(min_activation_mib(clf.models[s], x.shape) for s, x in clips.items())
  print(json.dumps({"loaded_rss_mib": round(loaded), "peak_rss_mib": round(peak),
                    "peak_minus_loaded_mib": round(peak - loaded),
                    "min_activations_mib": round(needed)}))


def chunks_cell(eval_type: str, frames: int, budget: int, checkpoint_dir: str) -> None:
  """Prints JSON: peak memory and time of `clip_logits` on one clip of `frames` frames that
  arrives in 16-frame blocks, under `budget`."""
  clf = i3d.load_classifier(eval_type, checkpoint_dir=checkpoint_dir, download=False)
  rng = np.random.default_rng(0)
  block = {s: rng.uniform(-1, 1, (1, 16, 224, 224, STREAM_CHANNELS[s])).astype(np.float32)
           for s in clf.streams}
  def blocks(length: int):
    return ({s: b[:, :min(16, length - start)] for s, b in block.items()}
            for start in range(0, length, 16))
  clf.clip_logits(blocks(16), 16, budget)  # traced once each, before the clock starts
  clf.clip_logits(blocks(64), 64, 48)
  loaded = status_mib("VmRSS")
  start = time.perf_counter()
  clf.clip_logits(blocks(frames), frames, budget)
  print(json.dumps({"loaded_rss_mib": round(loaded), "peak_rss_mib": round(status_mib("VmHWM")),
                    "seconds": time.perf_counter() - start}))


def chunks_table(args: argparse.Namespace) -> None:
  """The third form: each (frames, budget) cell in a fresh process, one after the other."""
  ckpt = write_checkpoints(Path(args.work or tempfile.mkdtemp(prefix="i3d-memory-"))
                           / "checkpoints")
  print("| frames | budget | path | peak RSS MiB | network s | frames/s |")
  print("|---|---|---|---|---|---|")
  for frames in args.frames:
    for budget in args.budgets:
      result = subprocess.run([sys.executable, "-m", "bench.memory", "chunks-cell",
                               args.eval_type, str(frames), str(budget), str(ckpt)],
                              capture_output=True, text=True, check=True)
      cell = json.loads(result.stdout.strip().splitlines()[-1])
      path = "one pass" if frames <= budget else "chunks"
      print(f"| {frames} | {budget} | {path} | {cell['peak_rss_mib']} | "
            f"{cell['seconds']:.1f} | {frames / cell['seconds']:.1f} |", flush=True)


# Command lines per benchmark name ({video}, {out}, {ckpt} and {eval_type} filled in).
COMMANDS = {
    "predict": ["predict", "{video}", "--eval_type", "{eval_type}", "--no_cache", "--quiet",
                "--checkpoint_dir", "{ckpt}", "--offline"],
    "predict_windows": ["predict", "{video}", "--eval_type", "{eval_type}", "--no_cache",
                        "--quiet", "--windows", "10", "--window_frames", "64",
                        "--checkpoint_dir", "{ckpt}", "--offline"],
    "features": ["features", "{video}", "--eval_type", "{eval_type}", "--no_cache", "--quiet",
                 "--output_dir", "{out}", "--checkpoint_dir", "{ckpt}", "--offline"],
    "preprocess": ["preprocess", "{video}", "--output", "{out}/inputs.npz", "--quiet"],
}


def make_video(folder: Path, seconds: float, size: str) -> Path:
  """A synthetic 25 fps MPEG-4 video of `seconds` at `size` (WxH), made once per folder."""
  path = folder / f"testsrc_{size}_{seconds:g}s.mp4"
  if not path.exists():
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi",
                    "-i", f"testsrc2=size={size}:rate=25:duration={seconds}", "-c:v", "mpeg4",
                    "-q:v", "5", str(path)], check=True)
  return path


def run_command(python_path: str, argv: list[str]) -> tuple[float, float, int]:
  """(peak RSS MiB, wall seconds, exit status) of `python -m i3d.cli ARGV` in a fresh process
  (one child at a time, so the children's high-water mark is this one's)."""
  env = {**os.environ, "PYTHONPATH": python_path, "I3D_PROGRESS": "0"}
  start = time.perf_counter()
  code = os.fork()
  if code == 0:
    os.chdir(python_path)
    os.execve(sys.executable, [sys.executable, "-m", "i3d.cli", *argv], env)
  _, status, usage = os.wait4(code, 0)
  return usage.ru_maxrss / 1024, time.perf_counter() - start, os.waitstatus_to_exitcode(status)


def write_checkpoints(folder: Path) -> Path:
  """Format-exact checkpoints of the five releases (random values, the released layout)."""
  from i3d.model.registry import RELEASED
  from i3d.testing import write_format_exact_checkpoint
  index = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "checkpoint_index"
  for name in RELEASED:
    if not (folder / name).exists():
      write_format_exact_checkpoint(index / name / "model.ckpt", folder / name)
  return folder


def benchmark(args: argparse.Namespace) -> None:
  work = Path(args.work or tempfile.mkdtemp(prefix="i3d-memory-"))
  work.mkdir(parents=True, exist_ok=True)
  ckpt = write_checkpoints(work / "checkpoints")
  trees = {"this": str(Path(__file__).resolve().parent.parent)}
  if args.python:
    trees["other"] = args.python
  cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
              if l.startswith("model name")), platform.processor())
  print(f"CPU: {cpu}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start\n")
  print("| command | eval | size | video s | frames | tree | peak RSS MiB | wall s | frames/s |")
  print("|---|---|---|---|---|---|---|---|---|")
  for command in args.commands:
    for eval_type in (args.eval_types if command != "preprocess" else ["joint"]):
      for size in args.sizes:
        for seconds in args.seconds:
          video = make_video(work, seconds, size)
          for tree, path in trees.items():
            out = Path(tempfile.mkdtemp(dir=work))
            argv = [a.format(video=video, out=out, ckpt=ckpt, eval_type=eval_type)
                    for a in COMMANDS[command]]
            peak, wall, status = run_command(path, argv)
            frames = round(seconds * 25)
            rate = f"{frames / wall:.1f}" if status == 0 else f"failed ({status})"
            print(f"| {command} | {eval_type} | {size} | {seconds:g} | {frames} | {tree} | "
                  f"{peak:.0f} | {wall:.1f} | {rate} |", flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seconds", type=float, nargs="+", default=[10, 60, 600])
  parser.add_argument("--sizes", nargs="+", default=["320x240", "1920x1080"])
  parser.add_argument("--commands", nargs="+", default=list(COMMANDS), choices=list(COMMANDS))
  parser.add_argument("--eval_types", nargs="+", default=["rgb", "joint"])
  parser.add_argument("--python", help="another checkout to run the same commands from")
  parser.add_argument("--work", help="folder for videos and checkpoints (kept between runs)")
  return parser.parse_args(argv)


def parse_chunks(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description="whole-clip logits against chunk budgets")
  parser.add_argument("--frames", type=int, nargs="+", default=[250, 1500])
  parser.add_argument("--budgets", type=int, nargs="+", default=[160, 320, 448])
  parser.add_argument("--eval_type", default="rgb")
  parser.add_argument("--work", help="folder for the checkpoints (kept between runs)")
  return parser.parse_args(argv)


if __name__ == "__main__":
  if sys.argv[1:2] == ["clip"]:
    main(sys.argv[2], int(sys.argv[3]), sys.argv[4])
  elif sys.argv[1:2] == ["chunks-cell"]:
    chunks_cell(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
  elif sys.argv[1:2] == ["chunks"]:
    chunks_table(parse_chunks(sys.argv[2:]))
  else:
    benchmark(parse(sys.argv[1:]))

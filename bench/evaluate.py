"""Batch evaluation throughput: videos/s end to end, and where the time goes.

    python -m bench.evaluate --eval_type joint --videos 6 --seconds 1

Builds a validation set of generated 320x240 clips named the Kinetics way and format-exact
checkpoints in a temporary folder, times `i3d.kinetics.evaluation.evaluate` (the tf.data
pipeline, decode and flow overlapped with the model), then times each stage alone on the same
videos to give the share of decode + resize, TV-L1 flow and the model.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import i3d  # noqa: E402
from i3d import kinetics  # noqa: E402
from i3d.inputs import stream  # noqa: E402
from i3d.inputs.settings import FPS, InputSettings, TVL1Params  # noqa: E402
from i3d.kinetics import evaluation  # noqa: E402
from i3d.model.streams import checkpoint_names  # noqa: E402
from i3d.testing import write_format_exact_checkpoint, write_validation_set  # noqa: E402

INDEX_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "checkpoint_index"
# One scale, one warp, two inner iterations: TV-L1 at a fraction of its cost, for quick runs.
CHEAP_TVL1 = TVL1Params(scales=1, warps=1, inner_iterations=2, outer_iterations=1,
                        median_filtering=1)


def stage_times(classifier, paths: list[Path], settings: InputSettings) -> dict[str, float]:
  """Seconds spent per stage when each runs alone: decode + resize + crop, flow, model."""
  totals = {"decode": 0.0, "flow": 0.0, "model": 0.0}
  for path in paths:
    start = time.perf_counter()
    frames = list(stream.resized(path, settings))
    views = stream.stacked(stream.cropped(frames, ["rgb"]))
    totals["decode"] += time.perf_counter() - start
    if "flow" in classifier.streams:
      start = time.perf_counter()
      views.update(stream.stacked(stream.cropped(stream.with_flow(frames, settings), ["flow"])))
      totals["flow"] += time.perf_counter() - start
    start = time.perf_counter()
    classifier.view_logits({s: views[s] for s in classifier.streams}, batch=1)
    totals["model"] += time.perf_counter() - start
  return totals


def validation_set(root: Path, eval_type: str, videos: int, seconds: float,
                   sources: tuple[Path, ...] = ()) -> tuple[list[kinetics.Clip], Path]:
  """(clips, video dir) of `videos` 320x240 clips under `root` (the first from `sources`, the
  rest generated), with format-exact checkpoints of `eval_type` in `root/ckpt`."""
  for name in checkpoint_names(eval_type).values():
    write_format_exact_checkpoint(INDEX_DIR / name / "model.ckpt", root / "ckpt" / name)
  labels = i3d.load_label_map(600 if eval_type == "rgb600" else 400)
  kinds = [*sources, *["generated"] * videos][:videos]
  specs = [(f"bench{i:06d}", labels[i], kind) for i, kind in enumerate(kinds)]
  annotations, video_dir = write_validation_set(root, specs, seconds, (320, 240))
  return kinetics.read_annotations(annotations).clips, video_dir


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--eval_type", default="joint", choices=i3d.EVAL_TYPES)
  parser.add_argument("--videos", type=int, default=6)
  parser.add_argument("--seconds", type=float, default=1.0, help="Length of each clip.")
  parser.add_argument("--flow_backend", default="opencv", choices=("opencv", "tf"))
  parser.add_argument("--full_tvl1", action="store_true",
                      help="OpenCV's default TV-L1 parameters instead of the cheap ones.")
  parser.add_argument("--workers", type=int, default=2)
  args = parser.parse_args()
  settings = InputSettings(flow_backend=args.flow_backend,
                                  flow_params=TVL1Params() if args.full_tvl1 else CHEAP_TVL1)
  with tempfile.TemporaryDirectory() as tmp:
    root = Path(tmp)
    clips, video_dir = validation_set(root, args.eval_type, args.videos, args.seconds)
    classifier = i3d.load_classifier(args.eval_type, checkpoint_dir=root / "ckpt", download=False)
    config = evaluation.EvalConfig(input_settings=settings,
                                   workers=args.workers, use_cache=False)
    classifier.view_logits({s: np.zeros((1, 9, 224, 224, 3 if s == "rgb" else 2),
                                                    np.float32) for s in classifier.streams}, 1)
    start = time.perf_counter()
    evaluation.evaluate(classifier, clips, video_dir, root / "run", config, progress=False)
    wall = time.perf_counter() - start
    stages = stage_times(classifier, sorted(kinetics.local_clips(video_dir).values()), settings)
  total = sum(stages.values())
  frames = round(args.seconds * FPS)
  print(f"{args.eval_type}, {args.videos} clips of {frames} frames (320x240), flow "
        f"{args.flow_backend} {'full' if args.full_tvl1 else 'cheap'} TV-L1, "
        f"{args.workers} workers, {os.cpu_count()} CPUs")
  print(f"end to end: {args.videos / wall:.3f} videos/s ({wall / args.videos:.2f} s/video)")
  print("stages alone: " + ", ".join(f"{k} {v / args.videos:.2f} s/video ({v / total:.0%})"
                                      for k, v in stages.items()))
  print(f"overlap gain: {total / wall:.2f}x the sum of the stages run one after another")


if __name__ == "__main__":
  main()

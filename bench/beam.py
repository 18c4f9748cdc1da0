"""The Beam pipelines on the local runner: clips/s with 1 and 2 workers, the speed-up, and the
overhead against the single-process command on the same clips.

    python -m bench.beam --videos 8 --seconds 1                      # i3d evaluate
    python -m bench.beam --command features --eval_type rgb          # i3d features

Builds generated 320x240 Kinetics-named clips and format-exact checkpoints in a temporary
folder, then runs, interleaved, the single-process path (`i3d.kinetics.evaluation.evaluate`
with its tf.data decode workers, or `i3d.embed.features.extract_videos`) and its Beam pipeline
(`i3d.pipelines.evaluate` or `i3d.pipelines.features`) on the DirectRunner with 1 and 2 worker
processes. Wall times include each run's start (worker processes, TensorFlow, the model).
"""

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import i3d  # noqa: E402
from bench.evaluate import CHEAP_TVL1, validation_set  # noqa: E402
from i3d.embed import features  # noqa: E402
from i3d.inputs.settings import InputSettings  # noqa: E402
from i3d.kinetics import evaluation  # noqa: E402
from i3d.pipelines import evaluate as evaluate_pipeline  # noqa: E402
from i3d.pipelines import features as features_pipeline  # noqa: E402
from i3d.pipelines import options  # noqa: E402

Run = Callable[[Path], object]  # one run into a new output folder
WORKERS = (1, 2)


def _local(workers: int) -> tuple:
  """(pipeline options, threads per worker) of the DirectRunner with `workers` processes."""
  return (options.pipeline_options("DirectRunner", workers),
          options.threads_per_worker("DirectRunner", workers))


def evaluate_runs(root: Path, eval_type: str, videos: int, seconds: float,
                  settings: InputSettings) -> dict[str, Run]:
  """`i3d evaluate` in one process and on Beam."""
  clips, video_dir = validation_set(root, eval_type, videos, seconds)
  config = evaluation.EvalConfig(input_settings=settings, use_cache=False)
  spec = evaluate_pipeline.ClassifierSpec(eval_type, str(root / "ckpt"))
  runs: dict[str, Run] = {"single process": lambda out: evaluation.evaluate(
      spec.load(), clips, video_dir, out, config, progress=False)}  # a worker loads it too
  for workers in WORKERS:
    runs[f"beam {workers} worker(s)"] = lambda out, w=workers: evaluate_pipeline.evaluate(
        spec, clips, str(video_dir), str(out), config, *_local(w), progress=False)
  return runs


def features_runs(root: Path, eval_type: str, videos: int, seconds: float,
                  settings: InputSettings) -> dict[str, Run]:
  """`i3d features` (Mixed_5c, 16-frame windows) in one process and on Beam."""
  clips, video_dir = validation_set(root, eval_type, videos, seconds)
  jobs = [(Path(c.filename).stem, video_dir / c.relpath) for c in clips]
  spec = features_pipeline.ExtractorSpec(tuple(i3d.checkpoint_names(eval_type).items()),
                                         checkpoint_dir=str(root / "ckpt"))
  runs: dict[str, Run] = {"single process": lambda out: features.extract_videos(
      spec.load(), jobs, out, settings, use_cache=False, progress=False)}
  for workers in WORKERS:
    runs[f"beam {workers} worker(s)"] = lambda out, w=workers: features_pipeline.extract(
        spec, jobs, out, settings, _local(w)[0], use_cache=False, threads=_local(w)[1],
        progress=False)
  return runs


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--command", default="evaluate", choices=("evaluate", "features"))
  parser.add_argument("--eval_type", default="joint", choices=i3d.EVAL_TYPES)
  parser.add_argument("--videos", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=1.0, help="Length of each clip.")
  parser.add_argument("--repeats", type=int, default=1)
  args = parser.parse_args()
  settings = InputSettings(flow_backend="opencv", flow_params=CHEAP_TVL1)
  make = evaluate_runs if args.command == "evaluate" else features_runs
  with tempfile.TemporaryDirectory() as tmp:
    root = Path(tmp)
    runs = make(root, args.eval_type, args.videos, args.seconds, settings)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for n in range(args.repeats):
      for i, (name, run) in enumerate(runs.items()):
        start = time.perf_counter()
        run(root / f"out{n}_{i}")
        times[name].append(time.perf_counter() - start)
  best = {k: min(v) for k, v in times.items()}
  print(f"{args.command}, {args.eval_type}, {args.videos} clips of {args.seconds:g} s "
        f"(320x240), cheap OpenCV TV-L1, {len(os.sched_getaffinity(0))} CPUs, best of "
        f"{args.repeats}")
  for name, wall in best.items():
    print(f"{name}: {wall:.1f} s, {args.videos / wall:.3f} clips/s, {wall / args.videos:.2f} "
          f"s/clip")
  single, one, two = best.values()
  print(f"speed-up 2 vs 1 worker: {one / two:.2f}x; overhead of 1 worker vs single process: "
        f"{one / single - 1:+.0%}; 2 workers vs single process: {single / two:.2f}x")


if __name__ == "__main__":
  main()

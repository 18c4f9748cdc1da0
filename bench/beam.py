"""The Beam evaluation pipeline on the local runner: clips/s with 1 and 2 workers, the speed-up,
and the overhead against the single-process evaluation on the same clips.

    python -m bench.beam --videos 8 --seconds 1

Builds generated 320x240 Kinetics-named clips and format-exact checkpoints in a temporary
folder, then runs, interleaved, `i3d.kinetics.evaluation.evaluate` (one process, tf.data decode
workers) and `i3d.pipelines.evaluate.evaluate` on the DirectRunner with 1 and 2 worker
processes. Wall times include each pipeline's start (worker processes, TensorFlow, the model).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import i3d  # noqa: E402
from bench.evaluate import CHEAP_TVL1, validation_set  # noqa: E402
from i3d.inputs.settings import InputSettings  # noqa: E402
from i3d.kinetics import evaluation  # noqa: E402
from i3d.pipelines import evaluate as pipeline  # noqa: E402
from i3d.pipelines import options  # noqa: E402


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--eval_type", default="joint", choices=i3d.EVAL_TYPES)
  parser.add_argument("--videos", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=1.0, help="Length of each clip.")
  parser.add_argument("--repeats", type=int, default=1)
  args = parser.parse_args()
  settings = InputSettings(flow_backend="opencv", flow_params=CHEAP_TVL1)
  config = evaluation.EvalConfig(input_settings=settings, use_cache=False)
  times: dict[str, list[float]] = {"single process": [], "beam 1 worker": [],
                                   "beam 2 workers": []}
  with tempfile.TemporaryDirectory() as tmp:
    root = Path(tmp)
    clips, video_dir = validation_set(root, args.eval_type, args.videos, args.seconds)
    spec = pipeline.ClassifierSpec(args.eval_type, str(root / "ckpt"))
    for n in range(args.repeats):
      start = time.perf_counter()
      classifier = spec.load()  # counted: a Beam run loads it in every worker
      evaluation.evaluate(classifier, clips, video_dir, root / f"single{n}", config,
                          progress=False)
      times["single process"].append(time.perf_counter() - start)
      for workers in (1, 2):
        start = time.perf_counter()
        pipeline.evaluate(spec, clips, str(video_dir), str(root / f"beam{workers}_{n}"), config,
                          options.pipeline_options("DirectRunner", workers),
                          options.threads_per_worker("DirectRunner", workers), progress=False)
        times[f"beam {workers} worker{'s' if workers > 1 else ''}"].append(
            time.perf_counter() - start)
  best = {k: min(v) for k, v in times.items()}
  print(f"{args.eval_type}, {args.videos} clips of {args.seconds:g} s (320x240), cheap OpenCV "
        f"TV-L1, {len(os.sched_getaffinity(0))} CPUs, best of {args.repeats}")
  for name, wall in best.items():
    print(f"{name}: {wall:.1f} s, {args.videos / wall:.3f} clips/s, {wall / args.videos:.2f} "
          f"s/clip")
  print(f"speed-up 2 vs 1 worker: {best['beam 1 worker'] / best['beam 2 workers']:.2f}x; "
        f"overhead of 1 worker vs single process: "
        f"{best['beam 1 worker'] / best['single process'] - 1:+.0%}; "
        f"2 workers vs single process: {best['single process'] / best['beam 2 workers']:.2f}x")


if __name__ == "__main__":
  main()

"""The Beam pipelines on the local runner: clips/s with 1 and 2 workers, the speed-up, and the
overhead against the single-process command on the same clips.

    python -m bench.beam                                             # i3d evaluate
    python -m bench.beam --command features --eval_type rgb          # i3d features
    python -m bench.beam --command preprocess                        # i3d preprocess

Builds generated 320x240 Kinetics-named clips (10 s, as Kinetics' are) and format-exact
checkpoints in a temporary folder, then runs, interleaved, the single-process path
(`i3d.kinetics.evaluation.evaluate` with its tf.data decode workers,
`i3d.embed.features.extract_videos`, or `i3d.kinetics.preprocess.preprocess` with a pool of one
process per core) on all the cores, and its Beam pipeline (`i3d.pipelines.evaluate`,
`i3d.pipelines.features` or `i3d.pipelines.preprocess`) on the DirectRunner:

- 1 worker and 2 workers of one core each (TensorFlow and OpenCV kept to one thread): scaling
  as on a cluster, where each added worker brings its own cores;
- 1 worker on all the cores (what `--workers 1` runs here).

Wall times include each run's start (worker processes, TensorFlow, the model).
"""

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

import i3d  # noqa: E402
from bench.evaluate import CHEAP_TVL1, validation_set  # noqa: E402
from i3d.embed import features  # noqa: E402
from i3d.inputs.settings import InputSettings  # noqa: E402
from i3d.kinetics import (
  evaluation,  # noqa: E402
  preprocess,  # noqa: E402
)
from i3d.pipelines import evaluate as evaluate_pipeline  # noqa: E402
from i3d.pipelines import features as features_pipeline  # noqa: E402
from i3d.pipelines import options  # noqa: E402
from i3d.pipelines import preprocess as preprocess_pipeline  # noqa: E402

Run = Callable[[Path], object]  # one run into a new output folder
SINGLE = "single process"
CORES = len(os.sched_getaffinity(0))
LOCAL = {(1, 1): "beam 1 worker x 1 core", (2, 1): "beam 2 workers x 1 core",
         (1, CORES): f"beam 1 worker x {CORES} cores"}  # (workers, threads each) -> name


def _local(workers: int) -> PipelineOptions:
  """The DirectRunner's options with `workers` processes."""
  return options.pipeline_options("DirectRunner", workers)


def evaluate_runs(root: Path, eval_type: str, videos: int, seconds: float,
                  settings: InputSettings) -> dict[str, Run]:
  """`i3d evaluate` in one process and on Beam."""
  clips, video_dir = validation_set(root, eval_type, videos, seconds)
  config = evaluation.EvalConfig(input_settings=settings, use_cache=False)
  spec = evaluate_pipeline.ClassifierSpec(eval_type, str(root / "ckpt"))
  runs: dict[str, Run] = {SINGLE: lambda out: evaluation.evaluate(
      spec.load(), clips, video_dir, out, config, progress=False)}  # a worker loads it too
  for (workers, threads), name in LOCAL.items():
    runs[name] = lambda out, w=workers, t=threads: evaluate_pipeline.evaluate(
        spec, clips, str(video_dir), str(out), config, _local(w), t, progress=False)
  return runs


def features_runs(root: Path, eval_type: str, videos: int, seconds: float,
                  settings: InputSettings) -> dict[str, Run]:
  """`i3d features` (Mixed_5c, 16-frame windows) in one process and on Beam."""
  clips, video_dir = validation_set(root, eval_type, videos, seconds)
  jobs = [(Path(c.filename).stem, video_dir / c.relpath) for c in clips]
  spec = features_pipeline.ExtractorSpec(tuple(i3d.checkpoint_names(eval_type).items()),
                                         checkpoint_dir=str(root / "ckpt"))
  runs: dict[str, Run] = {SINGLE: lambda out: features.extract_videos(
      spec.load(), jobs, out, settings, use_cache=False, progress=False)}
  for (workers, threads), name in LOCAL.items():
    runs[name] = lambda out, w=workers, t=threads: features_pipeline.extract(
        spec, jobs, out, settings, _local(w), use_cache=False, threads=t, progress=False)
  return runs


def preprocess_runs(root: Path, eval_type: str, videos: int, seconds: float,
                    settings: InputSettings) -> dict[str, Run]:
  """`i3d preprocess` (RGB and flow records) in a pool of one process per core and on Beam."""
  clips, video_dir = validation_set(root, eval_type, videos, seconds)
  config = preprocess.PreprocessConfig(settings=settings, workers=CORES)
  runs: dict[str, Run] = {SINGLE: lambda out: preprocess.preprocess(
      clips, video_dir, out, config, progress=False)}
  for (workers, threads), name in LOCAL.items():
    runs[name] = lambda out, w=workers, t=threads: preprocess.preprocess(
        clips, video_dir, out, config, progress=False,
        encoder=preprocess_pipeline.beam_encoder(_local(w), t, progress=False))
  return runs


COMMANDS = {"evaluate": evaluate_runs, "features": features_runs, "preprocess": preprocess_runs}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--command", default="evaluate", choices=tuple(COMMANDS))
  parser.add_argument("--eval_type", default="joint", choices=i3d.EVAL_TYPES)
  parser.add_argument("--videos", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=10.0, help="Length of each clip.")
  parser.add_argument("--repeats", type=int, default=1)
  args = parser.parse_args()
  settings = InputSettings(flow_backend="opencv", flow_params=CHEAP_TVL1)
  make = COMMANDS[args.command]
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
        f"(320x240), cheap OpenCV TV-L1, {CORES} CPUs, best of {args.repeats}")
  print("| path | wall | clips/s | s/clip |\n|---|---|---|---|")
  for name, wall in best.items():
    print(f"| {name} | {wall:.1f} s | {args.videos / wall:.3f} | {wall / args.videos:.2f} |")
  one, two, whole = (best[LOCAL[key]] for key in LOCAL)
  print(f"speed-up of 2 workers over 1 (one core each): {one / two:.2f}x; overhead of the "
        f"pipeline on the whole machine against the single process: 2 workers "
        f"{two / best[SINGLE] - 1:+.1%}, 1 worker x {CORES} cores {whole / best[SINGLE] - 1:+.1%}")


if __name__ == "__main__":
  main()

"""Beam pipeline options from the `--runner` and `--workers` flags plus Beam's own flags, and
what the pipelines share in how they lay out and run their work."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import TypeVar

from apache_beam.options.pipeline_options import PipelineOptions

from i3d._util import env
from i3d._util.files import environmental
from i3d.errors import UserError

LOCAL_RUNNER = "DirectRunner"
# Beam's workers log only what stops them; pass --default_sdk_harness_log_level=INFO to see more.
QUIET_WORKERS = "--default_sdk_harness_log_level=CRITICAL"

ItemT = TypeVar("ItemT")


def pipeline_options(runner: str, workers: int, beam_args: Sequence[str] = ()) -> PipelineOptions:
  """Options for `runner`. The local DirectRunner runs `workers` worker processes
  (multi-processing mode; Prism, which downloads a binary at run time, is never chosen);
  `beam_args` are Beam's own flags, passed through (e.g. --project, --flink_master)."""
  if workers < 1:
    raise UserError(f"--workers must be at least 1, got {workers}")
  _check_runner(runner)
  args = ["--runner", runner, *beam_args]
  if not any(a.startswith(QUIET_WORKERS.split("=")[0]) for a in beam_args):
    # Beam's INFO and WARNING lines (dozens per run, each retry's traceback) would bury ours;
    # failures reach the user as one line from the pipeline's exception instead.
    args.append(QUIET_WORKERS)
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
  if runner == LOCAL_RUNNER:
    env.check_workers(workers)
    args += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
  options = PipelineOptions(args)
  known = options.get_all_options(retain_unknown_options=False)
  unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
  if unknown:
    raise UserError(f"unknown Beam pipeline options: {', '.join('--' + u for u in unknown)}; "
                    f"see `python -m apache_beam.examples.wordcount --help` for Beam's flags")
  return options


def _check_runner(runner: str) -> None:
  """A `UserError` unless Beam knows the runner `runner` (a name or a module.Class path)."""
  from apache_beam.runners import runner as runners  # pylint: disable=import-outside-toplevel
  try:
    runners.create_runner(runner)
  except (ValueError, ImportError, AttributeError) as e:
    raise UserError(f"--runner {runner}: not a Beam runner ({e}); use DirectRunner, "
                    f"DataflowRunner, FlinkRunner, SparkRunner, PortableRunner, ...") from None


def pipeline_error(error: Exception) -> UserError:
  """The one line a failed pipeline run comes to: the last line of Beam's error (its remote
  tracebacks before it dropped), and whether a rerun may succeed (`files.environmental`)."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  reason = lines[-1] if lines else type(error).__name__
  hint = ("the machine's failure (disk, permissions, memory): fix it and run again to resume"
          if environmental(error) else
          "rerun with --default_sdk_harness_log_level=INFO for Beam's logs")
  return UserError(f"the Beam pipeline failed: {reason[:300]}; {hint}")


def threads_per_worker(runner: str, workers: int) -> int | None:
  """The local runner's share of this machine's cores for each worker (None elsewhere: each
  remote worker has its machine)."""
  if runner != LOCAL_RUNNER:
    return None
  return max(1, len(os.sched_getaffinity(0)) // workers)


def limit_threads(threads: int | None) -> None:
  """Keeps this worker process's TensorFlow and OpenCV to `threads` threads (when given), so
  local workers share the cores instead of oversubscribing them. Call it before TensorFlow runs."""
  if threads is None:
    return
  import cv2  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  cv2.setNumThreads(threads)
  try:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
  except RuntimeError:  # TensorFlow already ran in this process: it keeps its pools
    pass


def by_shard(jobs: Iterable[tuple[ItemT, str]]) -> list[tuple[str, list[ItemT]]]:
  """(shard, its items in job order) of jobs (item, shard), in shard order: the work units of a
  pipeline reading records, each shard read whole by one worker."""
  shards: dict[str, list[ItemT]] = {}
  for item, shard in jobs:
    shards.setdefault(str(shard), []).append(item)
  return sorted(shards.items())

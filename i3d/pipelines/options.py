"""Beam pipeline options from the `--runner` and `--workers` flags plus Beam's own flags, and
what the pipelines share in how they lay out and run their work, including the Beam executor of
`i3d.runs.executors`."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Optional, TypeVar

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from i3d._util import env, stderr, storage
from i3d._util.files import environmental
from i3d.errors import UserError
from i3d.runs import executors

LOCAL_RUNNER = "DirectRunner"
# Beam's workers log only what stops them; pass --default_sdk_harness_log_level=INFO to see more.
QUIET_WORKERS = "--default_sdk_harness_log_level=CRITICAL"
# Imported first by each local worker (`i3d.pipelines.worker`).
WORKER_START = "--beam_plugins=i3d.pipelines.worker"
# What a local worker writes before its log level applies: Python logging's lines below ERROR
# in logging's default format ("WARNING:root:apitools not found, ...").
_START_UP_LINE = re.compile(rb"^(DEBUG|INFO|WARNING):[\w.]*:")

ItemT = TypeVar("ItemT")


def pipeline_options(runner: str, workers: int, beam_args: Sequence[str] = ()) -> PipelineOptions:
  """Options for `runner`. The local DirectRunner runs `workers` worker processes
  (multi-processing mode; Prism, which downloads a binary at run time, is never chosen);
  `beam_args` are Beam's own flags, passed through (e.g. --project, --flink_master)."""
  if workers < 1:
    raise UserError(f"--workers must be at least 1, got {workers}")
  from apache_beam.runners import runner as runners  # pylint: disable=import-outside-toplevel
  try:  # Beam must know the runner (a name or a module.Class path)
    runners.create_runner(runner)
  except (ValueError, ImportError, AttributeError) as e:
    raise UserError(f"--runner {runner}: not a Beam runner ({e}); use DirectRunner, "
                    f"DataflowRunner, FlinkRunner, SparkRunner, PortableRunner, ...") from None
  args = ["--runner", runner, *beam_args]
  if not any(a.startswith(QUIET_WORKERS.split("=")[0]) for a in beam_args):
    # Beam's INFO and WARNING lines (dozens per run, each retry's traceback) would bury ours;
    # failures reach the user as one line from the pipeline's exception instead.
    args.append(QUIET_WORKERS)
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
  if runner == LOCAL_RUNNER:
    env.check_workers(workers)
    args += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}",
             WORKER_START]
  options = PipelineOptions(args)
  known = options.get_all_options(retain_unknown_options=False)
  unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
  if unknown:
    raise UserError(f"unknown Beam pipeline options: {', '.join('--' + u for u in unknown)}; "
                    f"see `python -m apache_beam.examples.wordcount --help` for Beam's flags")
  return options


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
  return executors.threads_per_worker(workers) if runner == LOCAL_RUNNER else None


def by_shard(jobs: Iterable[tuple[ItemT, str]]) -> list[tuple[str, list[ItemT]]]:
  """(shard, its items in job order) of jobs (item, shard), in shard order: the work units of a
  pipeline reading records, each shard read whole by one worker."""
  shards: dict[str, list[ItemT]] = {}
  for item, shard in jobs:
    shards.setdefault(str(shard), []).append(item)
  return sorted(shards.items())


class WorkerDoFn(beam.DoFn):
  """A DoFn whose worker is kept to `threads` threads (`executors.limit_threads`) before it
  runs, so local workers share the cores."""

  def __init__(self, threads: Optional[int]):
    super().__init__()
    self._threads = threads

  def setup(self) -> None:
    executors.limit_threads(self._threads)


class _Apply(WorkerDoFn):
  """item -> function(item); `describe(output)` is printed on stderr when given (progress from
  the workers)."""

  def __init__(self, function: Callable[[Any], Any], threads: Optional[int],
               describe: Optional[Callable[[Any], str]]):
    super().__init__(threads)
    self._function, self._describe = function, describe

  def process(self, item: Any) -> Iterator[Any]:
    output = self._function(item)
    if self._describe is not None:
      print(self._describe(output), file=sys.stderr, flush=True)
    yield output


def beam_executor(options: PipelineOptions, threads: Optional[int], scratch: str,
                  describe: Optional[Callable[[Any], str]] = None) -> executors.Executor:
  """An executor (`i3d.runs.executors`) running each item on the workers of the runner `options`
  name. The outputs (JSON values; tuples come back as lists) reach this process through the file
  `scratch`, local or on a filesystem the workers reach, removed once read."""

  def run(function: Callable[[Any], Any], items: Sequence[Any]) -> list:
    if not items:
      return []
    return run_collected(options, lambda pipeline: (
        pipeline | "Items" >> beam.Create(list(items)) | "Spread" >> beam.Reshuffle()
        | "Run" >> beam.ParDo(_Apply(function, threads, describe))), scratch)
  return run


def run_collected(options: PipelineOptions,
                  build: Callable[[beam.Pipeline], beam.PCollection], scratch: str) -> list:
  """Runs a pipeline on the runner `options` name and returns the elements (JSON values) of the
  PCollection `build` adds to it, brought back through the file `scratch` (local, or on a
  filesystem the workers reach), removed once read."""

  def save(outputs: list) -> None:
    storage.write_bytes(scratch, json.dumps(outputs).encode())

  with running(options) as pipeline:
    _ = build(pipeline) | "Collect" >> beam.combiners.ToList() | "Save" >> beam.Map(save)
  outputs = json.loads(storage.read_bytes(scratch))
  storage.remove(scratch)
  return outputs


@contextlib.contextmanager
def running(options: PipelineOptions) -> Iterator[beam.Pipeline]:
  """A pipeline on the runner `options` name, run when the block ends. Its failure is one line
  (`pipeline_error`); unless Beam's logs were asked for, the lines local workers write before
  their log level applies (`_START_UP_LINE`) stay off the terminal."""
  chosen = options.get_all_options()
  quiet = (chosen["runner"] == LOCAL_RUNNER and chosen["direct_running_mode"] == "multi_processing"
           and chosen["default_sdk_harness_log_level"] == QUIET_WORKERS.split("=")[1])
  with stderr.filtered(_START_UP_LINE.match) if quiet else contextlib.nullcontext():
    try:
      with beam.Pipeline(options=options) as pipeline:
        yield pipeline
    except Exception as e:  # noqa: BLE001 - Beam raises its own types with remote tracebacks
      raise pipeline_error(e) from e

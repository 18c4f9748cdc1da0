"""Beam pipeline options from the `--runner` and `--workers` flags plus Beam's own flags, and
what the pipelines share in how they lay out and run their work."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from apache_beam.options.pipeline_options import PipelineOptions

from i3d.errors import UserError
from i3d.runs import executors

LOCAL_RUNNER = "DirectRunner"

ItemT = TypeVar("ItemT")


def pipeline_options(runner: str, workers: int, beam_args: Sequence[str] = ()) -> PipelineOptions:
  """Options for `runner`. The local DirectRunner runs `workers` worker processes
  (multi-processing mode; Prism, which downloads a binary at run time, is never chosen);
  `beam_args` are Beam's own flags, passed through (e.g. --project, --flink_master)."""
  if workers < 1:
    raise UserError(f"--workers must be at least 1, got {workers}")
  args = ["--runner", runner, *beam_args]
  if runner == LOCAL_RUNNER:
    args += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
  options = PipelineOptions(args)
  known = options.get_all_options(retain_unknown_options=False)
  unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
  if unknown:
    raise UserError(f"unknown Beam pipeline options: {', '.join('--' + u for u in unknown)}; "
                    f"see `python -m apache_beam.examples.wordcount --help` for Beam's flags")
  return options


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

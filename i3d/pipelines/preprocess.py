"""`i3d preprocess --annotations ... --runner`: the expensive part of making records (decode,
resize, TV-L1 flow, JPEG encoding of every clip) as an Apache Beam pipeline.

The records are those of `i3d.kinetics.preprocess`, byte for byte: the Beam executor
(`options.beam_executor`) runs the same `encode_job` over the same jobs, and each clip's example
is staged atomically under a name fixed by its key, so a retried bundle rewrites the same file and
a killed run resumes from what is staged. The launcher then assembles the shards, manifest and
failure list from the staged clips exactly as the single-process run does. On a cluster,
OUTPUT_DIR (and VIDEO_DIR) are on a filesystem every worker reaches (gs://...): the workers stage
there and the launcher reads back.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions

from i3d._util import storage
from i3d.kinetics import preprocess
from i3d.pipelines.options import beam_executor

RESULTS_FILE = "beam_results.json"


def describe(result: preprocess.Result) -> str:
  """A worker's progress line for one encoded clip."""
  key, frames, error, retry = result
  if retry:
    return f"{key}: not done, to retry (the machine's failure): {error}"
  return f"{key}: {f'failed: {error}' if error else f'{frames} frames'}"


def beam_encoder(options: PipelineOptions, threads: int | None,
                 progress: bool) -> preprocess.Encoder:
  """An encoder for `i3d.kinetics.preprocess.preprocess` that runs the jobs on Beam."""

  def encode(jobs: Sequence[preprocess.EncodeJob]) -> list[preprocess.Result]:
    if not jobs:
      return []
    scratch = storage.join(posixpath.dirname(jobs[0].staged), RESULTS_FILE)
    run = beam_executor(options, threads, scratch, describe if progress else None)
    order = {job.key: i for i, job in enumerate(jobs)}
    return sorted((tuple(r) for r in run(preprocess.encode_job, jobs)),  # type: ignore[misc]
                  key=lambda r: order[r[0]])

  return encode

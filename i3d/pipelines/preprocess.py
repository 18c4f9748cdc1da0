"""`i3d preprocess --annotations ... --runner`: the expensive part of making records (decode,
resize, TV-L1 flow, JPEG encoding of every clip) as an Apache Beam pipeline.

The records are those of `i3d.kinetics.preprocess`, byte for byte: the pipeline runs the same
`encode_job` over the same jobs, and each clip's example is staged atomically under a name fixed
by its key, so a retried bundle rewrites the same file and a killed run resumes from what is
staged. The launcher then assembles the shards, manifest and failure list from the staged
clips exactly as the single-process run does. On a cluster, OUTPUT_DIR (and VIDEO_DIR) are on a
filesystem every worker reaches (gs://...): the workers stage there and the launcher reads back.
"""

from __future__ import annotations

import json
import posixpath
import sys
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from i3d._util import storage
from i3d.kinetics import preprocess as records_split
from i3d.pipelines.options import limit_threads, pipeline_error

RESULTS_FILE = "beam_results.json"


class EncodeClips(beam.DoFn):
  """A job -> (key, frames, error, retry) after staging its clip's example (a failure is an
  error string, never an exception Beam would retry; `retry` marks the machine's failures)."""

  def __init__(self, threads: int | None, progress: bool):
    self._threads, self._progress = threads, progress

  def setup(self) -> None:
    limit_threads(self._threads)

  def process(self, job):
    key, frames, error, retry = records_split.encode_job(job)
    if self._progress:
      print(f"{key}: {f'failed: {error}' if error else f'{frames} frames'}", file=sys.stderr,
            flush=True)
    yield key, frames, error, retry


def beam_encoder(options: PipelineOptions, threads: int | None,
                 progress: bool) -> records_split.Encoder:
  """An encoder for `i3d.kinetics.preprocess.preprocess` that runs the jobs on Beam."""

  def encode(jobs: Sequence) -> list[records_split.Result]:
    if not jobs:
      return []
    results = storage.join(posixpath.dirname(jobs[0].staged), RESULTS_FILE)

    def save(found: list) -> None:
      storage.write_bytes(results, json.dumps(sorted(found)).encode())

    try:
      with beam.Pipeline(options=options) as pipeline:
        _ = (pipeline | "Jobs" >> beam.Create(list(jobs)) | "Spread" >> beam.Reshuffle()
             | "Encode" >> beam.ParDo(EncodeClips(threads, progress))
             | "Collect" >> beam.combiners.ToList() | "Save" >> beam.Map(save))
    except Exception as e:  # noqa: BLE001 - Beam raises its own types with remote tracebacks
      raise pipeline_error(e) from e
    found = [tuple(r) for r in json.loads(storage.read_bytes(results))]
    storage.remove(results)
    order = {job.key: i for i, job in enumerate(jobs)}
    return sorted(found, key=lambda r: order[r[0]])  # type: ignore[return-value]

  return encode

"""`i3d features --runner`: the features of `i3d.embed.features.extract_videos` (and, from
records, of `extract_records`) as an Apache Beam pipeline, the same files whatever the number of
workers.

    jobs -> Reshuffle -> LoadInputs (decode, RGB, flow; failures tagged)
                         or, from records, shards -> Reshuffle -> LoadRecordInputs (each shard
                         read whole by one worker: `record_inputs`; failures tagged)
         -> RunInference(FeatureHandler: one extractor per worker) -> WriteFeatures
            (`write_video`: OUTPUT_DIR/{id}_{stream}.npy, then {id}.json, each atomically)
         -> one outcome per id -> the launcher's failures.jsonl

The launcher (`extract`) is `run_jobs`, as for one process: it skips the videos finished
earlier, holds the folder's lock, and appends the failures in job order. Nothing is lost or done
twice: a video's files have names fixed by its id and are renamed into place, so a retried
bundle rewrites the same files and a killed run resumes from the videos whose JSON is there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, cast

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from i3d.embed import features
from i3d.embed.features import ExtractorSpec
from i3d.inputs.settings import InputSettings
from i3d.inputs.views import cropped_inputs
from i3d.pipelines.inference import SpecModelHandler
from i3d.pipelines.options import WorkerDoFn, by_shard, run_collected
from i3d.runs import folder as runs

FAILED = "failed"
OUTCOMES_FILE = ".beam_outcomes.json"

FeatureJob = tuple[str, str]  # a video's id and path, or a record's id and shard
Outcome = tuple[str, tuple[str, Optional[str]]]  # id, (path, None or why it failed)


class LoadInputs(WorkerDoFn):
  """(id, path) -> ((id, path), inputs {stream: (1, T, 224, 224, C)}); a video that cannot be
  read becomes a failed outcome on the FAILED output instead of an error Beam would retry."""

  def __init__(self, streams: Sequence[str], input_settings: InputSettings, use_cache: bool,
               threads: Optional[int]):
    super().__init__(threads)
    self._streams, self._input_settings, self._use_cache = tuple(streams), input_settings, use_cache

  def process(self, job: FeatureJob) -> Iterator[Any]:
    vid, path = job
    try:
      inputs = cropped_inputs(path, self._input_settings, self._streams, 1, self._use_cache)
    except Exception as e:  # noqa: BLE001 - one bad video must not stop the run
      yield beam.pvalue.TaggedOutput(FAILED, (vid, (path, runs.item_failure(e))))
      return
    yield job, inputs


class LoadRecordInputs(WorkerDoFn):
  """(shard, ids of its clips) -> ((id, shard), inputs) for each clip read from the shard of
  records made with `stored` (`features.record_inputs`); a clip that cannot be read becomes a
  failed outcome on the FAILED output, as does every clip left when reading the shard raises
  (an error Beam would retry forever)."""

  def __init__(self, streams: Sequence[str], stored: dict, threads: Optional[int]):
    super().__init__(threads)
    self._streams, self._stored = tuple(streams), stored

  def process(self, job: tuple[str, list[str]]) -> Iterator[Any]:
    shard, ids = job
    left = dict.fromkeys(ids, shard)
    try:
      for vid, source, inputs in features.record_inputs(dict(left), self._streams, self._stored,
                                                        1):
        del left[vid]
        if isinstance(inputs, str):
          yield beam.pvalue.TaggedOutput(FAILED, (vid, (source, inputs)))
        else:
          yield (vid, source), inputs
    except Exception as e:  # noqa: BLE001 - one bad shard must not stop the run
      for vid in left:
        yield beam.pvalue.TaggedOutput(FAILED, (vid, (shard, runs.item_failure(e))))


class FeatureHandler(SpecModelHandler[dict, features.FeatureExtractor]):
  """RunInference's model: the feature extractor, loaded once per worker; an example is one
  video's inputs, its inference the video's `features.VideoFeatures` (windows run `batch` at a
  time, as in one process)."""

  def run_inference(self, batch: Sequence[dict], model: features.FeatureExtractor,
                    inference_args: Optional[dict] = None) -> Iterable[PredictionResult]:
    # The example (the inputs, hundreds of MB) is not carried along.
    return [PredictionResult(None, features.video_features(model, inputs)) for inputs in batch]


class WriteFeatures(beam.DoFn):
  """((id, path), prediction) -> the video's outcome after writing its files (`write_video`)."""

  def __init__(self, output_dir: str, record: dict, progress: bool):
    self._output_dir, self._record, self._progress = output_dir, record, progress

  def process(self, element: tuple[FeatureJob, PredictionResult]) -> Iterator[Outcome]:
    (vid, path), result = element
    reason = features.write_outcome(self._output_dir, vid, path, self._record,
                                    lambda: cast(features.VideoFeatures, result.inference))
    if self._progress:
      print(f"{vid}: {'written' if reason is None else f'failed: {reason}'}", file=sys.stderr,
            flush=True)
    yield vid, (path, reason)


def one_outcome(outcomes: Iterable[tuple[str, Optional[str]]]) -> tuple[str, Optional[str]]:
  """One outcome per id whatever was computed twice: written before failed, then the first
  reason in a fixed order."""
  return min(outcomes, key=lambda o: (o[1] is not None, o[1] or ""))


def build(pipeline: beam.Pipeline, spec: ExtractorSpec, jobs: Sequence[FeatureJob], output_dir: str,
          input_settings: InputSettings, use_cache: bool = True, threads: Optional[int] = None,
          progress: bool = False, stored: Optional[dict] = None) -> beam.PCollection:
  """Adds the extraction of `jobs` into `output_dir` to `pipeline`; with `stored`, the jobs are
  clips (`example/id`, shard) of records made with it. Returns the outcomes (id, (path, None or
  the reason it failed)), one per id."""
  handler: KeyedModelHandler = KeyedModelHandler(FeatureHandler(spec, 1, threads))
  work: list[Any] = list(jobs) if stored is None else by_shard(jobs)
  load = (LoadInputs(spec.streams, input_settings, use_cache, threads) if stored is None
          else LoadRecordInputs(spec.streams, stored, threads))
  loaded = (pipeline | "Jobs" >> beam.Create(work) | "Spread" >> beam.Reshuffle()
            | "LoadInputs" >> beam.ParDo(load).with_outputs(FAILED, main="inputs"))
  inferred, dead = loaded.inputs | "Features" >> RunInference(handler).with_exception_handling()
  record = features.features_record(spec, input_settings, stored)
  written = inferred | "Write" >> beam.ParDo(WriteFeatures(output_dir, record, progress))
  unextracted = dead.failed_inferences | "InferenceFailures" >> beam.FlatMapTuple(
      lambda batch, error: [(vid, (path, f"inference: {error[1]}")) for (vid, path), _ in batch])
  return ((written, unextracted, loaded[FAILED]) | "Outcomes" >> beam.Flatten()
          | "OnePerVideo" >> beam.CombinePerKey(one_outcome))


def extract(spec: ExtractorSpec, jobs: Sequence[tuple[str, str | Path]], output_dir: str | Path,
            input_settings: InputSettings, options: PipelineOptions, use_cache: bool = True,
            threads: Optional[int] = None, progress: bool = True,
            stored: Optional[dict] = None) -> features.ExtractionResult:
  """`features.extract_videos` on the runner `options` name (the extractor is `spec`'s, loaded
  by each worker): the same files, and the same result. With `stored`, `features.extract_records`
  of the clips `jobs` (`example/id`, shard) of records made with it (`input_settings` are then
  the records')."""
  output_dir = Path(output_dir)
  features.check_jobs(jobs)
  record = features.features_record(spec, input_settings, stored)

  def run(pending: Sequence[tuple[str, str | Path]], _start: Callable) -> features.Outcomes:
    if progress:
      print(f"{len(pending)} videos to extract, {len(jobs) - len(pending)} done earlier",
            file=sys.stderr)
    if not pending:
      return []
    outcomes = dict(run_collected(options, lambda pipeline: build(
        pipeline, spec, [(vid, str(path)) for vid, path in pending], str(output_dir),
        input_settings, use_cache, threads, progress, stored), str(output_dir / OUTCOMES_FILE)))
    return [(vid, *outcomes[vid]) for vid, _ in pending]

  return features.run_jobs(jobs, output_dir, record, run, progress=False)

"""`i3d evaluate` as an Apache Beam pipeline: the same files as the single-process evaluation
(`i3d.kinetics.evaluation`), computed by as many workers as the runner has.

    clips -> Reshuffle -> LoadViews (decode, RGB, flow, test-time views; failures tagged)
          -> RunInference(ClassifierHandler: one classifier per worker, clips of one shape
             batched) -> prediction records -> WriteResult (OUTPUT_DIR/clips/ID.json)
    + the results of earlier runs -> one per clip id -> WriteOutputs (with the metrics)

Nothing is lost or done twice: every clip's result (prediction or failure with its reason) is
staged atomically under a name fixed by its id in the run folder (`i3d.runs.folder`) before
anything depends on it, so a retried bundle rewrites the same files and a rerun skips the clips
already there, whether an earlier run was this pipeline or the single-process evaluation. Results
are keyed by clip id and deduplicated before the metrics.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import (
  KeyedModelHandler,
  ModelHandler,
  PredictionResult,
  RunInference,
)
from apache_beam.options.pipeline_options import PipelineOptions

from i3d._util import storage
from i3d.classify.classifier import Classifier, check_class_list, load_classifier
from i3d.inputs.views import video_views
from i3d.kinetics import evaluation, recordset, report, scoring
from i3d.kinetics.annotations import Clip
from i3d.kinetics.annotations import video_files as video_files  # re-exported
from i3d.model.checkpoints import label_map_of
from i3d.model.labels import load_label_map
from i3d.model.streams import choose_checkpoints
from i3d.pipelines.options import WorkerDoFn, by_shard, running
from i3d.runs import folder as runs
from i3d.runs.executors import limit_threads

FAILED = "failed"
PREDICTION, FAILURE = runs.RESULT, runs.FAILURE


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
  """The classifier each worker loads (the `--eval_type`, `--checkpoint_dir`,
  `--imagenet_pretrained`, `--precision`, `--rgb_checkpoint` and `--flow_checkpoint` flags);
  small enough to ship to workers instead of the weights."""
  eval_type: str = "joint"
  checkpoint_dir: str | None = None
  imagenet_pretrained: bool = True
  precision: str = "float32"
  rgb_checkpoint: str | None = None
  flow_checkpoint: str | None = None
  download: bool = True  # False (`--offline`): workers never fetch a missing checkpoint
  # The class list (`labels.txt` of records of a set other than Kinetics) and where it is from,
  # instead of the checkpoint's label map.
  class_list: tuple[str, ...] | None = None
  class_list_file: str = ""

  @property
  def checkpoints(self) -> dict[str, str]:
    return choose_checkpoints(self.eval_type, self.imagenet_pretrained, self.rgb_checkpoint,
                              self.flow_checkpoint)

  @property
  def labels(self) -> tuple[str, ...]:
    own = load_label_map(label_map_of(next(iter(self.checkpoints.values())),
                                      self.checkpoint_dir))
    if self.class_list is None:
      return own
    return check_class_list(self.class_list, len(own), self.checkpoints, self.class_list_file)

  @property
  def streams(self) -> tuple[str, ...]:
    return tuple(self.checkpoints)

  def load(self) -> Classifier:
    folder = Path(self.checkpoint_dir) if self.checkpoint_dir else None
    classifier = load_classifier(self.eval_type, checkpoint_dir=folder,
                                 imagenet_pretrained=self.imagenet_pretrained,
                                 precision=self.precision, rgb_checkpoint=self.rgb_checkpoint,
                                 flow_checkpoint=self.flow_checkpoint, download=self.download)
    if self.class_list is not None:
      classifier.relabel(self.class_list, self.class_list_file)
    return classifier


class LoadViews(WorkerDoFn):
  """(clip, path) -> ((clip, path), {stream: views}); a video that cannot be read becomes a
  failure result on the FAILED output instead of an error (Beam would retry it forever).

  With `records_dir`: (shard, its clips) -> ((clip, shard), views) for each clip read from the
  records `i3d preprocess` made (`i3d.kinetics.recordset.record_items`); clips that cannot be
  read become failure results on the FAILED output.
  """

  def __init__(self, streams: Sequence[str], config: evaluation.EvalConfig,
               threads: int | None, records_dir: str | None = None):
    super().__init__(threads)
    self._streams, self._config, self._records_dir = tuple(streams), config, records_dir

  def process(self, job: Any) -> Iterator[Any]:
    if self._records_dir is not None:
      yield from self._read(self._records_dir, *job)
      return
    clip, path = job
    try:
      with storage.local_copy(path) as local:
        views = video_views(local, self._streams, self._config.input_settings,
                            self._config.protocol,
                            self._config.use_cache and not storage.is_remote(path))
    except Exception as e:  # noqa: BLE001 - one bad video must not stop the run
      yield beam.pvalue.TaggedOutput(FAILED, failure_result(clip, path, runs.item_failure(e)))
      return
    yield (clip, path), views

  def _read(self, records_dir: str, shard: str, shard_clips: list[Clip]) -> Iterator[Any]:
    clips = {clip.youtube_id: clip for clip in shard_clips}
    for video_id, error, *arrays in recordset.record_items(
        records_dir, [(clip, shard) for clip in shard_clips], self._streams,
        self._config.protocol, 1):
      clip = clips[video_id.decode()]
      if error:
        yield beam.pvalue.TaggedOutput(FAILED, failure_result(clip, shard, error.decode()))
      else:
        yield (clip, shard), dict(zip(self._streams, arrays))


def failure_result(clip: Clip, path: str, reason: str) -> dict:
  """The result of a clip that could not be scored, for `reason`."""
  return {"kind": FAILURE, "record": scoring.failure_record(clip, path, reason)}


class ClassifierHandler(ModelHandler[dict, PredictionResult, Classifier]):
  """RunInference's model: the classifier of `spec` (shipped to the workers instead of the
  weights), loaded once per worker after keeping it to `threads` threads (`limit_threads`); an
  example is one clip's views {stream: (views, T, 224, 224, C)}, its inference the per-stream
  logits averaged over them. RunInference hands over up to `max_clips` clips at a time; those
  whose views share a shape run through the model together, `view_batch` views per call."""

  def __init__(self, spec: ClassifierSpec, view_batch: int, max_clips: int,
               threads: int | None):
    super().__init__()
    self._spec, self._view_batch, self._max_clips, self._threads = (spec, view_batch, max_clips,
                                                                    threads)

  def load_model(self) -> Classifier:
    limit_threads(self._threads)
    return self._spec.load()

  def batch_elements_kwargs(self) -> dict:
    return {"min_batch_size": 1, "max_batch_size": self._max_clips}

  def run_inference(self, batch: Sequence[dict], model: Classifier,
                    inference_args: dict | None = None) -> Iterable[PredictionResult]:
    groups: dict[tuple, list[int]] = {}
    for i, views in enumerate(batch):
      groups.setdefault(tuple((s, v.shape[1:]) for s, v in sorted(views.items())), []).append(i)
    logits: list[dict] = [{} for _ in batch]
    for indices in groups.values():
      joined = {s: np.concatenate([batch[i][s] for i in indices]) for s in model.streams}
      per_view = model.logits_per_view(joined, self._view_batch)
      bounds = np.cumsum([0] + [len(batch[i][model.streams[0]]) for i in indices])
      for n, i in enumerate(indices):
        logits[i] = {s: v[bounds[n]:bounds[n + 1]].mean(axis=0) for s, v in per_view.items()}
    # The example (the views, hundreds of MB) is not carried along.
    return [PredictionResult(None, clip_logits) for clip_logits in logits]


class WriteResult(beam.DoFn):
  """Writes a clip's result to its own file (atomically: a retried bundle rewrites the same
  file) and passes it on keyed by clip id."""

  def __init__(self, output_dir: str, progress: bool):
    self._output_dir, self._progress = output_dir, progress

  def process(self, result: dict) -> Iterator[tuple[str, dict]]:
    record = result["record"]
    runs.stage(self._output_dir, evaluation.STAGED_DIR, result)
    if self._progress:
      status = "scored" if result["kind"] == PREDICTION else f"failed: {record['reason']}"
      print(f"{record['id']}: {status}", file=sys.stderr, flush=True)
    yield record["id"], result


def one_result(results: Iterable[dict]) -> dict:
  """One result per clip id whatever was computed twice: a prediction before a failure, then
  the first in a fixed order."""
  return min(results, key=lambda r: (r["kind"] != PREDICTION, json.dumps(r, sort_keys=True)))


@dataclasses.dataclass(frozen=True)
class Outputs:
  """What the final step writes: the run's files in OUTPUT_DIR, in annotation order."""
  output_dir: str
  order: dict[str, int]
  labels: tuple[str, ...]
  missing: tuple[Clip, ...]
  config: evaluation.EvalConfig
  eval_type: str

  def write(self, results: list[dict]) -> None:
    """predictions.jsonl, failures.jsonl, metrics.json, the ActivityNet file, summary, plots."""
    ordered = sorted(results, key=lambda r: self.order[r["record"]["id"]])
    predictions = [r["record"] for r in ordered if r["kind"] == PREDICTION]
    failures = [r["record"] for r in ordered if r["kind"] == FAILURE]
    with storage.local_folder(self.output_dir) as folder:
      for name, records in ((evaluation.PREDICTIONS_FILE, predictions),
                            (runs.FAILURES_FILE, failures)):
        lines = "".join(json.dumps(r) + "\n" for r in records)
        storage.write_bytes(str(folder / name), lines.encode())
      scoring.write_outputs(folder, self.labels, predictions, failures, self.missing,
                            self.config.protocol.describe(), self.eval_type)


def build(pipeline: beam.Pipeline, spec: ClassifierSpec, jobs: Sequence[evaluation.ClipJob],
          earlier: Sequence[str | dict], outputs: Outputs, threads: int | None,
          progress: bool = False, records_dir: str | None = None) -> beam.PCollection:
  """Adds the evaluation of `jobs` to `pipeline`; `earlier` are the results of earlier runs
  (`read_result`).
  With `records_dir`, a job's path is its clip's shard there. Returns the results, one per
  clip."""
  config = outputs.config
  views_per_clip = max(1, config.protocol.windows) * config.protocol.crops
  handler: KeyedModelHandler = KeyedModelHandler(ClassifierHandler(
      spec, config.view_batch, max(1, config.view_batch // views_per_clip), threads))
  work = list(jobs) if records_dir is None else by_shard(jobs)
  load = LoadViews(spec.streams, config, threads, records_dir)
  loaded = (pipeline | "Clips" >> beam.Create(work) | "Spread" >> beam.Reshuffle()
            | "LoadViews" >> beam.ParDo(load).with_outputs(FAILED, main="views"))
  inferred, dead = (loaded.views | "Classify" >> RunInference(handler)
                    .with_exception_handling())
  labels, top_k, save_logits = outputs.labels, config.top_k, config.save_logits
  predicted = inferred | "Predictions" >> beam.MapTuple(lambda key, result: {
      "kind": PREDICTION, "record": scoring.prediction_record(
          key[0], result.inference, labels, top_k, save_logits)})
  unscored = dead.failed_inferences | "InferenceFailures" >> beam.FlatMapTuple(
      lambda batch, error: [failure_result(clip, path, runs.item_failure(
          RuntimeError(f"inference: {error[1]}"))) for (clip, path), _ in batch])
  new = ((predicted, unscored, loaded[FAILED]) | "NewResults" >> beam.Flatten()
         | "WriteResults" >> beam.ParDo(WriteResult(outputs.output_dir, progress)))
  old = (pipeline | "Earlier" >> beam.Create(list(earlier))
         | "ReadEarlier" >> beam.Map(read_result))
  results = ((new, old) | "AllResults" >> beam.Flatten()
             | "OnePerClip" >> beam.CombinePerKey(one_result) | beam.Values())
  _ = results | "Collect" >> beam.combiners.ToList() | "WriteOutputs" >> beam.Map(outputs.write)
  return results


def _earlier(output_dir: str, scored: dict[str, dict], failures: dict[str, dict]) -> list:
  """The results of earlier runs as the pipeline reads them: the path of each one a worker
  staged (read by the workers), else the result itself (a line of the single process's logs)."""
  staged = set(storage.list_names(storage.join(output_dir, evaluation.STAGED_DIR), ".json"))
  earlier: list[str | dict] = []
  for kind, done in ((PREDICTION, scored), (FAILURE, failures)):
    for clip_id, record in done.items():
      path = runs.staged_path(output_dir, evaluation.STAGED_DIR, clip_id)
      earlier.append(path if posixpath.basename(path) in staged else
                     {"kind": kind, "record": record})
  return earlier


def read_result(earlier: str | dict) -> tuple[str, dict]:
  """An earlier run's result (or the path of its staged file), keyed by clip id."""
  result = json.loads(storage.read_bytes(earlier)) if isinstance(earlier, str) else earlier
  return result["record"]["id"], result


def evaluate(spec: ClassifierSpec, clips: Sequence[Clip], video_dir: str | None,
             output_dir: str, config: evaluation.EvalConfig, options: PipelineOptions,
             threads: int | None = None, progress: bool = True,
             records_dir: str | None = None) -> dict:
  """Evaluates `clips` found under `video_dir` (or in the records `records_dir`) on the runner
  `options` name, resuming the run in `output_dir` (clips with a result are skipped); returns
  the metrics."""
  labels = spec.labels
  evaluation.check_annotations(clips, labels)
  with runs.RunFolder(output_dir, "evaluation").locked() as folder:
    folder.check_settings(config.record(clips, spec))
    found = evaluation.locate(clips, video_dir, records_dir)
    with evaluation.open_ledger(folder) as ledger:
      scored, failures, jobs, missing = evaluation.resume(ledger, clips, found, labels,
                                                          config.retry_failed)
    earlier = _earlier(folder.path, scored, failures)
    outputs = Outputs(folder.path, {c.youtube_id: i for i, c in enumerate(clips)}, labels,
                      tuple(missing), config, spec.eval_type)
    if progress:
      print(f"{len(jobs)} clips to score, {len(earlier)} done earlier, {len(missing)} missing",
            file=sys.stderr)
    with running(options) as pipeline:
      build(pipeline, spec, jobs, earlier, outputs, threads, progress, records_dir)
  return json.loads(storage.read_bytes(storage.join(output_dir, report.METRICS_FILE)))

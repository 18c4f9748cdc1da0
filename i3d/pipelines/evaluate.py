"""`i3d evaluate` as an Apache Beam pipeline: the same files as the single-process evaluation
(`i3d.kinetics.evaluation`), computed by as many workers as the runner has.

    clips -> Reshuffle -> LoadViews (decode, RGB, flow, test-time views; failures tagged)
          -> RunInference(ClassifierHandler: one classifier per worker, clips of one shape
             batched) -> prediction records -> WriteResult (OUTPUT_DIR/clips/ID.json)
    + the results of earlier runs -> one per clip id -> metrics (CombineFn) -> WriteOutputs

Nothing is lost or done twice: every clip's result (prediction or failure with its reason) is
written atomically under a name fixed by its id before anything depends on it, so a retried
bundle rewrites the same files and a rerun skips the clips already there. Results are keyed by
clip id and deduplicated before the metrics.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from i3d._util import storage
from i3d.classify.classifier import Classifier, load_classifier
from i3d.inputs.views import video_views
from i3d.kinetics import evaluation, metrics, preprocess, report
from i3d.kinetics.annotations import Clip, IndexRow, video_files
from i3d.model.checkpoints import label_map_of
from i3d.model.labels import load_label_map
from i3d.model.streams import choose_checkpoints
from i3d.pipelines.inference import SpecModelHandler
from i3d.pipelines.options import by_shard, limit_threads

RESULTS_DIR = "clips"
FAILED = "failed"
PREDICTION, FAILURE = "prediction", "failure"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Job = tuple[Clip, str]  # a clip and its video's path


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

  @property
  def checkpoints(self) -> dict[str, str]:
    return choose_checkpoints(self.eval_type, self.imagenet_pretrained, self.rgb_checkpoint,
                              self.flow_checkpoint)

  @property
  def labels(self) -> tuple[str, ...]:
    return load_label_map(label_map_of(next(iter(self.checkpoints.values())),
                                       self.checkpoint_dir))

  @property
  def streams(self) -> tuple[str, ...]:
    return tuple(self.checkpoints)

  def load(self) -> Classifier:
    folder = Path(self.checkpoint_dir) if self.checkpoint_dir else None
    return load_classifier(self.eval_type, checkpoint_dir=folder,
                           imagenet_pretrained=self.imagenet_pretrained, precision=self.precision,
                           rgb_checkpoint=self.rgb_checkpoint,
                           flow_checkpoint=self.flow_checkpoint, download=self.download)


def result_path(output_dir: str, clip_id: str) -> str:
  """Where a clip's result goes: a name fixed by its id (ids that are not plain file names are
  hex-encoded)."""
  name = clip_id if _SAFE_ID.match(clip_id) else "x" + clip_id.encode().hex()
  return storage.join(output_dir, RESULTS_DIR, f"{name}.json")


class LoadViews(beam.DoFn):
  """(clip, path) -> ((clip, path), {stream: views}); a video that cannot be read becomes a
  failure result on the FAILED output instead of an error (Beam would retry it forever)."""

  def __init__(self, streams: Sequence[str], config: evaluation.EvalConfig,
               threads: int | None):
    self._streams, self._config, self._threads = tuple(streams), config, threads

  def setup(self) -> None:
    limit_threads(self._threads)

  def process(self, job: Job) -> Iterator[Any]:
    clip, path = job
    try:
      with storage.local_copy(path) as local:
        views = video_views(local, self._streams, self._config.input_settings,
                            self._config.protocol,
                            self._config.use_cache and not storage.is_remote(path))
    except Exception as e:  # noqa: BLE001 - one bad video must not stop the run
      yield beam.pvalue.TaggedOutput(FAILED, failure_result(clip, path, e))
      return
    yield (clip, path), views


class LoadRecordViews(beam.DoFn):
  """(shard, its clips) -> ((clip, shard), views) for each clip read from the records
  `i3d preprocess` made (`i3d.kinetics.preprocess.record_items`); clips that cannot be read
  become failure results on the FAILED output."""

  def __init__(self, records_dir: str, streams: Sequence[str], config: evaluation.EvalConfig,
               threads: int | None):
    self._records_dir, self._streams = records_dir, tuple(streams)
    self._config, self._threads = config, threads

  def setup(self) -> None:
    limit_threads(self._threads)

  def process(self, job: tuple[str, list[Clip]]) -> Iterator[Any]:
    shard, shard_clips = job
    rows = [IndexRow(clip, "found", shard) for clip in shard_clips]
    clips = {clip.youtube_id: clip for clip in shard_clips}
    for video_id, error, *arrays in preprocess.record_items(
        self._records_dir, rows, self._streams, self._config.protocol, 1):
      clip = clips[video_id.decode()]
      if error:
        failure = {"kind": FAILURE, "record": evaluation.failure_record(clip, shard,
                                                                        error.decode())}
        yield beam.pvalue.TaggedOutput(FAILED, failure)
      else:
        yield (clip, shard), dict(zip(self._streams, arrays))


def failure_result(clip: Clip, path: str, error: Exception) -> dict:
  """The result of a clip that could not be scored."""
  return {"kind": FAILURE,
          "record": evaluation.failure_record(clip, path, evaluation.failure_reason(error))}


class ClassifierHandler(SpecModelHandler[dict, Classifier]):
  """RunInference's model: the classifier, loaded once per worker; an example is one clip's
  views {stream: (views, T, 224, 224, C)}, its inference the per-stream logits averaged over
  them. Clips whose views share a shape run through the model together, `view_batch` views per
  call."""

  def __init__(self, spec: ClassifierSpec, view_batch: int, max_clips: int,
               threads: int | None):
    super().__init__(spec, max_clips, threads)
    self._view_batch = view_batch

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
    storage.write_bytes(result_path(self._output_dir, record["id"]), json.dumps(result).encode())
    if self._progress:
      status = "scored" if result["kind"] == PREDICTION else f"failed: {record['reason']}"
      print(f"{record['id']}: {status}", file=sys.stderr, flush=True)
    yield record["id"], result


def read_result(path: str) -> tuple[str, dict]:
  """A result written by an earlier run, keyed by clip id."""
  result = json.loads(storage.read_bytes(path))
  return result["record"]["id"], result


def one_result(results: Iterable[dict]) -> dict:
  """One result per clip id whatever was computed twice: a prediction before a failure, then
  the first in a fixed order."""
  return min(results, key=lambda r: (r["kind"] != PREDICTION, json.dumps(r, sort_keys=True)))


class MetricsFn(beam.CombineFn):
  """Prediction records -> metrics.json's scores, from counts that add up across workers."""

  def __init__(self, labels: Sequence[str]):
    self._labels = tuple(labels)

  def create_accumulator(self) -> metrics.Counts:
    return metrics.Counts.empty(len(self._labels))

  def add_input(self, counts: metrics.Counts, record: dict) -> metrics.Counts:
    return counts + evaluation.counts([record], self._labels)

  def merge_accumulators(self, accumulators: Iterable[metrics.Counts]) -> metrics.Counts:
    return sum(accumulators, self.create_accumulator())

  def extract_output(self, counts: metrics.Counts) -> dict:
    return metrics.summarize_counts(counts, self._labels)


@dataclasses.dataclass(frozen=True)
class Outputs:
  """What the final step writes: the run's files in OUTPUT_DIR, in annotation order."""
  output_dir: str
  order: dict[str, int]
  labels: tuple[str, ...]
  missing: tuple[Clip, ...]
  config: evaluation.EvalConfig
  eval_type: str

  def write(self, results: list[dict], scores: dict) -> None:
    """predictions.jsonl, failures.jsonl, metrics.json, the ActivityNet file, summary, plots."""
    ordered = sorted(results, key=lambda r: self.order[r["record"]["id"]])
    predictions = [r["record"] for r in ordered if r["kind"] == PREDICTION]
    failures = [r["record"] for r in ordered if r["kind"] == FAILURE]
    with storage.local_folder(self.output_dir) as folder:
      for name, records in ((evaluation.PREDICTIONS_FILE, predictions),
                            (evaluation.FAILURES_FILE, failures)):
        lines = "".join(json.dumps(r) + "\n" for r in records)
        storage.write_bytes(str(folder / name), lines.encode())
      evaluation.write_outputs(folder, self.labels, predictions, failures, self.missing,
                               self.config, self.eval_type, scores)


def build(pipeline: beam.Pipeline, spec: ClassifierSpec, jobs: Sequence[Job],
          earlier: Sequence[str], outputs: Outputs, threads: int | None,
          progress: bool = False, records_dir: str | None = None) -> beam.PCollection:
  """Adds the evaluation of `jobs` to `pipeline`; `earlier` are result files of earlier runs.
  With `records_dir`, a job's path is its clip's shard there. Returns the results, one per
  clip."""
  config = outputs.config
  views_per_clip = max(1, config.protocol.windows) * config.protocol.crops
  handler: KeyedModelHandler = KeyedModelHandler(ClassifierHandler(
      spec, config.view_batch, max(1, config.view_batch // views_per_clip), threads))
  work: list[Any]
  load: beam.DoFn
  if records_dir is None:
    work, load = list(jobs), LoadViews(spec.streams, config, threads)
  else:
    work, load = by_shard(jobs), LoadRecordViews(records_dir, spec.streams, config, threads)
  loaded = (pipeline | "Clips" >> beam.Create(work) | "Spread" >> beam.Reshuffle()
            | "LoadViews" >> beam.ParDo(load).with_outputs(FAILED, main="views"))
  inferred, dead = (loaded.views | "Classify" >> RunInference(handler)
                    .with_exception_handling())
  labels, top_k, save_logits = outputs.labels, config.top_k, config.save_logits
  predicted = inferred | "Predictions" >> beam.MapTuple(lambda key, result: {
      "kind": PREDICTION, "record": evaluation.prediction_record(
          key[0], result.inference, labels, top_k, save_logits)})
  unscored = dead.failed_inferences | "InferenceFailures" >> beam.FlatMapTuple(
      lambda batch, error: [failure_result(clip, path, RuntimeError(f"inference: {error[1]}"))
                            for (clip, path), _ in batch])
  new = ((predicted, unscored, loaded[FAILED]) | "NewResults" >> beam.Flatten()
         | "WriteResults" >> beam.ParDo(WriteResult(outputs.output_dir, progress)))
  old = (pipeline | "Earlier" >> beam.Create(list(earlier))
         | "ReadEarlier" >> beam.Map(read_result))
  results = ((new, old) | "AllResults" >> beam.Flatten()
             | "OnePerClip" >> beam.CombinePerKey(one_result) | beam.Values())
  scores = (results | beam.Filter(lambda r: r["kind"] == PREDICTION)
            | "Records" >> beam.Map(lambda r: r["record"])
            | "Metrics" >> beam.CombineGlobally(MetricsFn(outputs.labels)))
  _ = (results | "Collect" >> beam.combiners.ToList()
       | "WriteOutputs" >> beam.Map(outputs.write, beam.pvalue.AsSingleton(scores)))
  return results


def evaluate(spec: ClassifierSpec, clips: Sequence[Clip], video_dir: str | None,
             output_dir: str, config: evaluation.EvalConfig, options: PipelineOptions,
             threads: int | None = None, progress: bool = True,
             records_dir: str | None = None) -> dict:
  """Evaluates `clips` found under `video_dir` (or in the records `records_dir`) on the runner
  `options` name, resuming the run in `output_dir` (clips with a result are skipped); returns
  the metrics."""
  labels = spec.labels
  evaluation.check_clips(clips, labels, config)
  output_dir = str(output_dir)
  storage.makedirs(storage.join(output_dir, RESULTS_DIR))
  with storage.locked(output_dir, f"another evaluation is writing to {output_dir}"):
    evaluation.check_run(output_dir, config.record(clips, spec))
    if records_dir is None:
      files = video_files(str(video_dir))
    else:
      files = {r.clip.filename: str(r.path) for r in preprocess.record_rows(clips, records_dir)
               if r.path is not None}
    results_dir = storage.join(output_dir, RESULTS_DIR)
    done = {name[:-len(".json")] for name in storage.list_names(results_dir, ".json")}
    earlier, jobs, missing = [], [], []
    for clip in clips:
      path = result_path(output_dir, clip.youtube_id)
      if posixpath.basename(path)[:-len(".json")] in done:
        earlier.append(path)
      elif clip.filename in files:
        jobs.append((clip, files[clip.filename]))
      else:
        missing.append(clip)
    outputs = Outputs(output_dir, {c.youtube_id: i for i, c in enumerate(clips)}, labels,
                      tuple(missing), config, spec.eval_type)
    if progress:
      print(f"{len(jobs)} clips to score, {len(earlier)} done earlier, {len(outputs.missing)} "
            f"missing", file=sys.stderr)
    with beam.Pipeline(options=options) as pipeline:
      build(pipeline, spec, jobs, earlier, outputs, threads, progress, records_dir)
  return json.loads(storage.read_bytes(storage.join(output_dir, report.METRICS_FILE)))

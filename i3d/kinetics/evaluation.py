"""Batch evaluation of a classifier over annotated Kinetics clips: resumable, with scores and files.

A `tf.data` pipeline decodes and preprocesses videos in parallel (`map(num_parallel_calls)`)
while the classifier runs on the previous one (`prefetch`). Each finished video is appended to
`predictions.jsonl` and fsynced, so a run killed at any moment resumes where it stopped; the
settings of the first run are kept in `run.json` and a restart with other settings is refused.
"""

import dataclasses
import hashlib
import json
import sys
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import filelock
import numpy as np
import tensorflow as tf

from i3d._util import progress as progress_output
from i3d._util import storage, text
from i3d._util.files import write_json
from i3d._util.jsonl import JsonLines
from i3d.classify import ranking
from i3d.classify.classifier import Classifier
from i3d.errors import UserError
from i3d.inputs.settings import InputSettings
from i3d.inputs.views import Protocol, video_views
from i3d.kinetics import metrics, preprocess, report
from i3d.kinetics.annotations import Clip, index_videos
from i3d.model.labels import did_you_mean, load_label_map
from i3d.model.streams import INPUT_SIZE, STREAM_CHANNELS

RUN_FILE = "run.json"
PREDICTIONS_FILE = "predictions.jsonl"
FAILURES_FILE = "failures.jsonl"
ACTIVITYNET_FILE = "results_activitynet.json"
RUN_FORMAT = 2


class ModelFacts(typing.Protocol):
  """What a run records of its model: a `Classifier`, or the description of one that workers
  load (`i3d.pipelines`)."""
  @property
  def eval_type(self) -> str | None: ...

  @property
  def checkpoints(self) -> dict[str, str]: ...

  @property
  def labels(self) -> tuple[str, ...]: ...

  @property
  def precision(self) -> str: ...


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """How a run scores its videos, plus how fast it goes (`workers`, `view_batch`); the model is
  the classifier's (its eval type, checkpoints and precision are recorded from it)."""
  protocol: Protocol = Protocol()
  input_settings: InputSettings = InputSettings()
  top_k: int = 5
  save_logits: bool = False
  use_cache: bool = True
  workers: int = 2
  view_batch: int = 4

  def record(self, clips: Sequence[Clip], classifier: "ModelFacts") -> dict:
    """The settings checked when a run is resumed: model, protocol, inputs and the clip list."""
    listing = "\n".join(f"{c.filename}\t{c.label}" for c in clips).encode()
    return {"format": RUN_FORMAT, "eval_type": classifier.eval_type,
            "checkpoints": dict(classifier.checkpoints), "precision": classifier.precision,
            "num_classes": len(classifier.labels), "protocol": dataclasses.asdict(self.protocol),
            "input_settings": dataclasses.asdict(self.input_settings), "top_k": self.top_k,
            "save_logits": self.save_logits, "num_clips": len(clips),
            "clips_sha256": hashlib.sha256(listing).hexdigest()}


def check_run(output_dir: str | Path, record: dict) -> None:
  """Writes `run.json` on a first run; on a restart refuses settings that differ from it."""
  path = storage.join(output_dir, RUN_FILE)
  if not storage.exists(path):
    storage.write_bytes(path, json.dumps(record, indent=1).encode())
    return
  earlier = json.loads(storage.read_bytes(path))
  changed = [f"{k}: {earlier.get(k)!r} -> {record.get(k)!r}"
             for k in sorted(set(earlier) | set(record)) if earlier.get(k) != record.get(k)]
  if changed:
    raise UserError(f"{output_dir} holds a run with other settings ({'; '.join(changed)}); "
                    f"rerun with the earlier settings or use a new --output_dir")


def _pipeline(jobs: Sequence[tuple[str, str]], load: Callable[[Path], dict[str, np.ndarray]],
              streams: Sequence[str], workers: int) -> tf.data.Dataset:
  """(id, error, *stream views) per job, loaded `workers` at a time, one video ahead of the
  model."""

  def generate() -> Iterator[tuple[str, str]]:
    yield from jobs

  def load_one(path: tf.Tensor) -> list:
    try:
      views = load(Path(path.numpy().decode()))
      return [""] + [views[s] for s in streams]
    except Exception as e:  # noqa: BLE001 - one bad video must not stop a 20,000-video run
      empty = [np.zeros((0, 0, INPUT_SIZE, INPUT_SIZE, STREAM_CHANNELS[s]), np.float32)
               for s in streams]
      return [failure_reason(e)] + empty

  def load_map(video_id: tf.Tensor, path: tf.Tensor):
    out = tf.py_function(load_one, [path], [tf.string] + [tf.float32] * len(streams))
    return (video_id, *out)

  spec = (tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string))
  return (tf.data.Dataset.from_generator(generate, output_signature=spec)
          .map(load_map, num_parallel_calls=workers, deterministic=True).prefetch(1))


def failure_reason(error: Exception) -> str:
  """The reason recorded for a video that could not be scored: a UserError's own line, else the
  exception's type and message."""
  return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"


def failure_record(clip: Clip, path: object, reason: str) -> dict:
  """One line of failures.jsonl."""
  return {"id": clip.youtube_id, "label": clip.label, "path": str(path), "reason": reason}


def prediction_record(clip: Clip, logits: dict[str, np.ndarray], labels: Sequence[str],
                      top_k: int, save_logits: bool) -> dict:
  """One line of predictions.jsonl: id, label, top-k classes, softmax scores of summed logits."""
  fused = ranking.fuse(logits)
  probabilities = ranking.softmax(fused)
  top = ranking.top_k(fused, top_k)
  record: dict[str, object] = {"id": clip.youtube_id, "label": clip.label,
            "classes": [labels[i] for i in top],
            "scores": [float(probabilities[i]) for i in top]}
  if save_logits:
    record["stream_logits"] = {s: v.astype(float).tolist() for s, v in logits.items()}
  return record


def check_clips(clips: Sequence[Clip], labels: Sequence[str], config: EvalConfig) -> None:
  """Refuses clip lists the results file cannot key (duplicate ids) or the model cannot score,
  and a top-k too short for the metrics."""
  if config.top_k < 5:
    raise UserError("top_k must be at least 5 (top-5 accuracy is computed from stored top-k)")
  seen, unknown = set(), sorted({c.label for c in clips if c.label not in labels}, key=str)
  for clip in clips:
    if clip.youtube_id in seen:
      raise UserError(f"YouTube id {clip.youtube_id} appears twice in the annotations; "
                      f"results are keyed by id, so evaluate one clip per video")
    seen.add(clip.youtube_id)
  if unknown:
    if len(labels) != 600 and set(unknown) <= set(load_label_map(600)):
      hint = "; they are Kinetics-600 classes: use eval type rgb600"
    else:
      hint = did_you_mean(str(unknown[0]), labels) or (
          "; use the eval type matching the annotations (rgb600 for Kinetics-600)")
    raise UserError(f"{text.count(len(unknown), 'label')} of the annotations "
                    f"{'is not a class' if len(unknown) == 1 else 'are not classes'} of this "
                    f"{len(labels)}-class model (e.g. {unknown[0]!r}){hint}")


def evaluate(classifier: Classifier, clips: Sequence[Clip], video_dir: Path | None,
             output_dir: Path, config: EvalConfig, progress: bool = True,
             records_dir: Path | None = None) -> dict:
  """Scores `classifier` on `clips` found under `video_dir` (or in the records `records_dir`
  made by `i3d.kinetics.preprocess`), resuming the run in `output_dir`.

  Args:
    classifier: what to evaluate; its eval type and checkpoints are recorded in run.json.
    clips: annotated clips (`i3d.kinetics.read_annotations`); ids must be unique.
    video_dir: where the clip files are, anywhere below (`{id}_{start}_{end}.mp4`); None with
      `records_dir`.
    output_dir: predictions.jsonl, failures.jsonl, metrics.json, the ActivityNet file, the
      report; an earlier run there is resumed, or refused if its settings differ.
    config: protocol, input settings, top-k and speed settings.
    progress: show a progress bar on stderr.
    records_dir: read the clips' inputs from these records instead of `video_dir`.

  Returns:
    The metrics written to metrics.json.
  """
  check_clips(clips, classifier.labels, config)
  output_dir = Path(output_dir)
  output_dir.mkdir(parents=True, exist_ok=True)
  try:
    with filelock.FileLock(output_dir / ".lock", timeout=0):
      return _evaluate_locked(classifier, clips, video_dir, output_dir, config, progress,
                              records_dir)
  except filelock.Timeout:
    raise UserError(f"another evaluation is writing to {output_dir}") from None


def _evaluate_locked(classifier: Classifier, clips: Sequence[Clip], video_dir: Path | None,
                     output_dir: Path, config: EvalConfig, progress: bool,
                     records_dir: Path | None) -> dict:
  """The locked body of `evaluate`."""
  check_run(output_dir, config.record(clips, classifier))
  predictions = JsonLines(output_dir / PREDICTIONS_FILE)
  failures = JsonLines(output_dir / FAILURES_FILE)
  done = {r["id"] for r in predictions.records + failures.records}
  rows = (preprocess.record_rows(clips, records_dir) if records_dir is not None
          else index_videos(clips, Path(str(video_dir)), check_readable=False))
  missing = [r.clip for r in rows if r.status == "missing"]
  pending = {r.clip.youtube_id: r for r in rows
             if r.status != "missing" and r.clip.youtube_id not in done}
  streams = classifier.streams
  if records_dir is not None:
    items = preprocess.record_items(records_dir, list(pending.values()), streams,
                                    config.protocol, config.workers)
  else:
    items = _pipeline([(i, str(r.path)) for i, r in pending.items()],
                      lambda path: video_views(path, streams, config.input_settings,
                                               config.protocol, config.use_cache),
                      streams, config.workers).as_numpy_iterator()
  bar = progress_output.outer(len(rows) - len(missing), "evaluating", "video", show=progress,
                             initial=len(rows) - len(missing) - len(pending))
  try:
    for video_id, error, *arrays in items:
      clip = pending[video_id.decode()].clip
      if error:
        failures.append(failure_record(clip, pending[clip.youtube_id].path, error.decode()))
        bar.write(f"failed: {clip.filename}: {error.decode()}", file=sys.stderr)
      else:
        logits = classifier.view_logits(dict(zip(streams, arrays)), config.view_batch)
        predictions.append(prediction_record(clip, logits, classifier.labels, config.top_k,
                                             config.save_logits))
      bar.update()
  finally:
    bar.close()
    predictions.close()
    failures.close()
  return write_outputs(output_dir, classifier.labels, predictions.records, failures.records,
                       missing, config, classifier.eval_type)


def counts(records: Sequence[dict], labels: Sequence[str]) -> metrics.Counts:
  """The metric counts of prediction records (from predictions.jsonl) against their labels."""
  index = {name: i for i, name in enumerate(labels)}
  ranked = np.array([[index[c] for c in r["classes"]] for r in records] or np.zeros((0, 5)),
                    np.int64)
  truth = np.array([index[r["label"]] for r in records], np.int64)
  return metrics.Counts.of(ranked, truth, len(labels))


def score(records: Sequence[dict], labels: Sequence[str]) -> dict:
  """Metrics of prediction records (from predictions.jsonl) against their labels."""
  return metrics.summarize_counts(counts(records, labels), tuple(labels))


def activitynet_results(records: Sequence[dict], num_classes: int) -> dict:
  """The ActivityNet challenge classification format read by the official evaluation code."""
  return {"version": f"KINETICS-{num_classes}",
          "results": {r["id"]: [{"label": c, "score": s} for c, s in zip(r["classes"], r["scores"])]
                      for r in records},
          "external_data": {"used": True, "details": "I3D: ImageNet-pretrained Inception-v1 "
                                                     "weights inflated, trained on Kinetics"}}


def write_outputs(output_dir: Path, labels: Sequence[str], records: Sequence[dict],
                  failures: Sequence[dict], missing: Sequence[Clip], config: EvalConfig,
                  eval_type: str | None, scores: dict | None = None) -> dict:
  """metrics.json, the ActivityNet results file, summary.md and the plots; returns the metrics.

  `scores` are the records' metrics when already computed (`score` otherwise).
  """
  scores = score(records, labels) if scores is None else scores
  result = {**scores, "num_videos": len(records), "num_missing": len(missing),
            "num_failed": len(failures), "eval_type": eval_type,
            "protocol": config.protocol.describe(),
            "missing": [c.filename for c in missing],
            "failed": [{"id": f["id"], "reason": f["reason"]} for f in failures]}
  write_json(output_dir / report.METRICS_FILE, result)
  write_json(output_dir / ACTIVITYNET_FILE, activitynet_results(records, len(labels)))
  report.write_report(output_dir)
  return result


def score_line(result: dict) -> str:
  """The one-line summary printed when a run ends."""
  return (f"top-1 {result['top1']:.2%}  top-5 {result['top5']:.2%}  mean class accuracy "
          f"{result['mean_class_accuracy']:.2%}  challenge error {result['challenge_error']:.4f}  "
          f"({text.count(result['num_videos'], 'video')}; {result['num_missing']} missing and "
          f"{result['num_failed']} failed, not scored)")

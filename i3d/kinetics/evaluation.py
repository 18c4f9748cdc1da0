"""Batch evaluation of a classifier over annotated Kinetics clips: resumable, with scores and files.

A `tf.data` pipeline decodes and preprocesses videos in parallel (`map(num_parallel_calls)`)
while the classifier runs on the previous one (`prefetch`). Each finished video is appended to
`predictions.jsonl` and fsynced, so a run killed at any moment resumes where it stopped; the
settings of the first run are kept in `run.json` and a restart with other settings is refused.
Each video is noted in `started.jsonl` before it is decoded, so a video that kills the process
(out of memory, a decoder crash) is recorded as failed after `MAX_STARTS` tries instead of
stopping every resumed run. A failed video is tried again when its file changes.
"""

import collections
import dataclasses
import hashlib
import json
import os
import sys
import threading
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

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
from i3d.inputs.views import Protocol, cropped_inputs, temporal_views
from i3d.kinetics import metrics, preprocess, report
from i3d.kinetics.annotations import Clip, index_videos
from i3d.model.labels import did_you_mean, load_label_map
from i3d.model.streams import INPUT_SIZE, STREAM_CHANNELS

RUN_FILE = "run.json"
PREDICTIONS_FILE = "predictions.jsonl"
FAILURES_FILE = "failures.jsonl"
STARTED_FILE = "started.jsonl"
# Times a video may be started without finishing (the process died) before it counts as failed.
MAX_STARTS = 2
ACTIVITYNET_FILE = "results_activitynet.json"
RUN_FORMAT = 2
SCORES = ("top1", "top5", "mean_class_accuracy", "challenge_error")


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
  retry_failed: bool = False

  def __post_init__(self):
    if self.top_k < 5:
      raise UserError("top_k must be at least 5 (top-5 accuracy is computed from stored top-k)")
    if self.workers < 1 or self.view_batch < 1:
      raise UserError(f"workers and view_batch must be at least 1, got {self.workers} and "
                      f"{self.view_batch}")

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
  try:
    earlier = json.loads(storage.read_bytes(path))
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise UserError(f"{path} is damaged ({e}); use a new --output_dir, or delete the run's "
                    f"files to start it again") from None
  if not isinstance(earlier, dict):
    raise UserError(f"{path} is damaged (not a JSON object); use a new --output_dir")
  changed = text.differences(earlier, record)
  if changed:
    raise UserError(f"{output_dir} holds a run with other settings ({'; '.join(changed)}); "
                    f"rerun with the earlier settings or use a new --output_dir")


def _pipeline(jobs: Sequence[str], load: Callable[[str], dict[str, np.ndarray]],
              streams: Sequence[str], workers: int) -> tf.data.Dataset:
  """(id, error, *stream inputs) per video id, loaded `workers` at a time, one video ahead of
  the model. Ids, not paths, go through TensorFlow, so any file name works."""

  def generate() -> Iterator[str]:
    yield from jobs

  def load_one(video_id: tf.Tensor) -> list:
    try:
      inputs = load(video_id.numpy().decode())
      return [""] + [inputs[s] for s in streams]
    except Exception as e:  # noqa: BLE001 - one bad video must not stop a 20,000-video run
      empty = [np.zeros((0, 0, INPUT_SIZE, INPUT_SIZE, STREAM_CHANNELS[s]), np.float32)
               for s in streams]
      return [failure_reason(e)] + empty

  def load_map(video_id: tf.Tensor):
    out = tf.py_function(load_one, [video_id], [tf.string] + [tf.float32] * len(streams))
    return (video_id, *out)

  spec = tf.TensorSpec([], tf.string)
  return (tf.data.Dataset.from_generator(generate, output_signature=spec)
          .map(load_map, num_parallel_calls=workers, deterministic=True).prefetch(1))


def file_state(path: Path) -> str:
  """Size and modification time of a file: a changed file is tried again after a failure."""
  stat = path.stat()
  return f"{stat.st_size}:{stat.st_mtime_ns}"


def failure_reason(error: Exception) -> str:
  """The reason recorded for a video that could not be scored: a UserError's own line, else the
  exception's type and message."""
  return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"


def failure_record(clip: Clip, path: object, reason: str) -> dict:
  """One line of failures.jsonl; a local file's state (`file_state`) is kept too, so the video
  is tried again once the file changes."""
  record = {"id": clip.youtube_id, "label": clip.label, "path": str(path), "reason": reason}
  if "://" not in str(path) and os.path.isfile(str(path)):
    record["file"] = file_state(Path(str(path)))
  return record


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
  """Refuses clip lists the results file cannot key (duplicate ids) or the model cannot score
  (`config` checked its own top-k)."""
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
    output_dir: predictions.jsonl, failures.jsonl, started.jsonl, metrics.json, the
      ActivityNet file, the report; an earlier run there is resumed, or refused if its
      settings differ.
    config: protocol, input settings, top-k and speed settings.
    progress: show a progress bar on stderr.
    records_dir: read the clips' inputs from these records instead of `video_dir`.

  Returns:
    The metrics written to metrics.json.
  """
  check_clips(clips, classifier.labels, config)
  if records_dir is None and not Path(str(video_dir)).is_dir():
    raise UserError(f"video folder {video_dir} does not exist; pass the folder holding the clips")
  output_dir = Path(output_dir)
  try:
    output_dir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot write to {output_dir} ({e.strerror or e}); choose a writable "
                    f"--output_dir") from None
  with storage.locked(str(output_dir), f"another evaluation is writing to {output_dir}"):
    return _evaluate_locked(classifier, clips, video_dir, output_dir, config, progress,
                            records_dir)


def _evaluate_locked(classifier: Classifier, clips: Sequence[Clip], video_dir: Path | None,
                     output_dir: Path, config: EvalConfig, progress: bool,
                     records_dir: Path | None) -> dict:
  """The locked body of `evaluate`."""
  check_run(output_dir, config.record(clips, classifier))
  by_id = {c.youtube_id: c for c in clips}
  rows = (preprocess.record_rows(clips, records_dir) if records_dir is not None
          else index_videos(clips, Path(str(video_dir)), check_readable=False))
  missing = [r.clip for r in rows if r.status == "missing"]
  found = {r.clip.youtube_id: Path(r.path) for r in rows if r.path is not None}
  if clips and not found:
    raise UserError(f"none of the {len(clips)} annotated clips is in {records_dir or video_dir}; "
                    f"check --video_dir (or --records) and --split")
  predictions = JsonLines(output_dir / PREDICTIONS_FILE)
  scored = _checked_predictions(predictions, by_id, classifier.labels)
  failures, failed_log, started = _failures(output_dir, by_id, found, scored,
                                            config.retry_failed)
  pending = [i for i in found if i not in scored and i not in failures]
  streams = classifier.streams
  if records_dir is not None:
    located = {r.clip.youtube_id: r for r in rows}
    items = preprocess.record_items(records_dir, [located[i] for i in pending], streams,
                                    config.protocol, config.workers)
  else:
    items = _decoded_views(pending, found, streams, config, started)
  bar = progress_output.outer(len(found), "evaluating", "video", show=progress,
                             initial=len(found) - len(pending))
  try:
    for video_id, error, *views in items:
      clip = by_id[video_id.decode()]
      if error:
        failures[clip.youtube_id] = _fail(failed_log, clip, found[clip.youtube_id],
                                          error.decode())
        bar.write(f"failed: {clip.filename}: {error.decode()}", file=sys.stderr)
      else:
        logits = classifier.view_logits(dict(zip(streams, views)), config.view_batch)
        record = prediction_record(clip, logits, classifier.labels, config.top_k,
                                   config.save_logits)
        predictions.append(record)
        scored[clip.youtube_id] = record
      bar.update()
  finally:
    bar.close()
    predictions.close()
    failed_log.close()
    started.close()
  return write_outputs(output_dir, classifier.labels, list(scored.values()),
                       list(failures.values()), missing, config, classifier.eval_type)


def _decoded_views(pending: Sequence[str], found: dict[str, Path], streams: Sequence[str],
                   config: EvalConfig, started: JsonLines) -> Iterator[tuple]:
  """(id, error, *stream views) of each pending video, decoded `config.workers` at a time.

  Each video is noted in `started` before it is decoded. The crops travel through `tf.data`
  and become views (`temporal_views`, lazy for windows) only here, one video at a time.
  """
  lock = threading.Lock()

  def load(video_id: str) -> dict[str, np.ndarray]:
    with lock:
      started.append({"id": video_id, "file": file_state(found[video_id])})
    return cropped_inputs(found[video_id], config.input_settings, streams,
                          config.protocol.crops, config.use_cache)

  dataset = _pipeline(pending, load, streams, config.workers)
  for video_id, error, *crops in dataset.as_numpy_iterator():
    yield (video_id, error) if error else (
        video_id, error, *(temporal_views(c, config.protocol) for c in crops))


def _checked_predictions(log: JsonLines, clips: dict[str, Clip],
                         labels: Sequence[str]) -> dict[str, dict]:
  """The stored prediction of each clip, by id: lines of clips not in this run are ignored and
  a repeated id counts once (its last line); a malformed line is a `UserError`."""
  known, scored = set(labels), {}
  for number, record in enumerate(log.records, 1):
    clip = clips.get(record.get("id"))  # type: ignore[arg-type]
    if clip is None:
      continue
    classes, scores = record.get("classes"), record.get("scores")
    if (record.get("label") != clip.label or not isinstance(classes, list)
        or not isinstance(scores, list) or len(classes) != len(scores) or len(classes) < 5
        or not set(classes) <= known):  # type: ignore[arg-type]
      raise UserError(f"{log.path} record {number} ({clip.youtube_id}) is malformed: it needs "
                      f"label {clip.label!r} and at least 5 known classes with scores; delete "
                      f"the line to score the video again")
    scored[clip.youtube_id] = record
  ignored = len(log.records) - sum(r.get("id") in clips for r in log.records)
  if ignored:
    print(f"warning: {log.path}: {ignored} lines name no clip of this run and are ignored",
          file=sys.stderr)
  return scored


def _failures(output_dir: Path, clips: dict[str, Clip], found: dict[str, Path],
              scored: dict[str, dict], retry_all: bool) -> tuple[dict[str, dict], JsonLines,
                                                                  JsonLines]:
  """(standing failures by id, the failures log, the started log) of a run being resumed.

  A failure is dropped, so its video is tried again, when its file changed or went, or with
  `retry_all`. A video started `MAX_STARTS` times with the same file and never finished (the
  process died each time) is recorded as failed.
  """
  failed = JsonLines(output_dir / FAILURES_FILE)
  started = JsonLines(output_dir / STARTED_FILE)
  for log in (failed, started):
    if not all(isinstance(r.get("id"), str) for r in log.records):
      raise UserError(f"{log.path} is damaged (a line has no video id); delete it to try the "
                      f"failed videos again")

  def current(record: dict) -> bool:
    path = found.get(record["id"])
    return path is not None and record.get("file") == file_state(path)

  stale = {r["id"] for r in failed.records if retry_all or not current(r)}
  if stale:
    failed.keep(lambda r: r["id"] not in stale)
    started.keep(lambda r: r["id"] not in stale)
  failures = {r["id"]: r for r in failed.records if r["id"] in clips}
  crashes = collections.Counter(r["id"] for r in started.records if current(r)
                                and r["id"] not in scored and r["id"] not in failures)
  for video_id in sorted(i for i, n in crashes.items() if n >= MAX_STARTS):
    failures[video_id] = _fail(failed, clips[video_id], found[video_id], (
        f"the run died {crashes[video_id]} times while this video was being processed (out of "
        f"memory or a decoder crash?); it is tried again when the file changes, or with "
        f"--retry_failed"))
  return failures, failed, started


def _fail(log: JsonLines, clip: Clip, path: Path, reason: str) -> dict:
  """Appends a failure record of `clip` to `log` and returns it."""
  record = failure_record(clip, path, reason)
  log.append(record)
  return record
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
  if not records:  # strict JSON has no NaN: null, and why
    scores = {**scores, **{k: None for k in SCORES},
              "not_scored": f"no video was scored ({len(missing)} missing, {len(failures)} "
                            f"failed)"}
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
  counts = (f"({text.count(result['num_videos'], 'video')}; {result['num_missing']} missing "
            f"and {result['num_failed']} failed, not scored)")
  if result["top1"] is None:
    return f"{result['not_scored']} {counts}"
  return (f"top-1 {result['top1']:.2%}  top-5 {result['top5']:.2%}  mean class accuracy "
          f"{result['mean_class_accuracy']:.2%}  challenge error {result['challenge_error']:.4f}  "
          + counts)

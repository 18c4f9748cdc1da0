"""Batch evaluation of a classifier over annotated Kinetics clips: resumable, with scores and files.

A `tf.data` pipeline decodes and preprocesses videos in parallel (`map(num_parallel_calls)`)
while the classifier runs on the previous one (`prefetch`). The output folder is a run folder
(`i3d.runs.folder`): each finished video is appended to `predictions.jsonl` (or, in the Beam
pipeline, staged as `clips/ID.json`) so a run killed at any moment resumes where it stopped,
with either; the settings of the first run are kept in `run.json` and a restart with other
settings is refused. Each video is noted in `started.jsonl` before it is decoded, so a video that
kills the process is recorded as failed after `MAX_STARTS` tries. A failed video is tried again
when its file changes.
"""

import dataclasses
import sys
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from i3d._util import progress as progress_output
from i3d._util import text
from i3d._util.files import environmental
from i3d._util.jsonl import JsonLines, RemoteLines
from i3d.classify.classifier import Classifier
from i3d.errors import UserError
from i3d.inputs.settings import InputSettings
from i3d.inputs.views import ViewProtocol, cropped_inputs, temporal_views
from i3d.kinetics import recordset, scoring
from i3d.kinetics.annotations import Clip, clip_list, video_files
from i3d.model.labels import did_you_mean, load_label_map
from i3d.model.streams import INPUT_SIZE, STREAM_CHANNELS
from i3d.runs import folder as runs

PREDICTIONS_FILE = "predictions.jsonl"
STAGED_DIR = "clips"  # per-clip outcomes staged by the Beam pipeline's workers
RUN_FORMAT = 2
ClipJob = tuple[Clip, str]  # a clip and its video's path (or its records shard)


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
  protocol: ViewProtocol = ViewProtocol()
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
    return {"format": RUN_FORMAT, "eval_type": classifier.eval_type,
            "checkpoints": dict(classifier.checkpoints), "precision": classifier.precision,
            "num_classes": len(classifier.labels), "protocol": dataclasses.asdict(self.protocol),
            "input_settings": dataclasses.asdict(self.input_settings), "top_k": self.top_k,
            "save_logits": self.save_logits, **clip_list(clips)}


def check_annotations(clips: Sequence[Clip], labels: Sequence[str]) -> None:
  """Refuses clip lists the results file cannot key (duplicate ids) or the model cannot score."""
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
  check_annotations(clips, classifier.labels)
  if records_dir is None and not Path(str(video_dir)).is_dir():
    raise UserError(f"video folder {video_dir} does not exist; pass the folder holding the clips")
  with runs.RunFolder(output_dir, "evaluation").locked() as folder:
    folder.check_settings(config.record(clips, classifier))
    found = locate(clips, video_dir, records_dir)
    if clips and not found:
      raise UserError(f"none of the {len(clips)} annotated clips is in "
                      f"{records_dir or video_dir}; check --video_dir (or --records) and --split")
    with open_ledger(folder) as ledger:
      scored, failures, pending, missing = resume(ledger, clips, found, classifier.labels,
                                                  config.retry_failed)
      if records_dir is None:
        items = _decoded_views(pending, found, classifier.streams, config, ledger)
      else:
        items = recordset.record_items(records_dir, pending, classifier.streams, config.protocol,
                                       config.workers)
      _score(classifier, clips, items, found, len(pending), config, ledger, (scored, failures),
             progress)
    return scoring.write_outputs(Path(output_dir), classifier.labels, list(scored.values()),
                                 list(failures.values()), missing, config.protocol.describe(),
                                 classifier.eval_type)


def locate(clips: Sequence[Clip], video_dir: str | Path | None,
           records_dir: str | Path | None) -> dict[str, str]:
  """Where each clip that is there is, by id: its video anywhere under `video_dir` (local, or on
  any filesystem `storage` reaches), or its shard in the records `records_dir`."""
  if records_dir is None:
    files = video_files(str(video_dir))
  else:
    files = {r.clip.filename: str(r.path) for r in recordset.record_rows(clips, records_dir)
             if r.path is not None}
  return {c.youtube_id: files[c.filename] for c in clips if c.filename in files}


def open_ledger(folder: runs.RunFolder) -> runs.Ledger:
  """The outcomes of the evaluation run in `folder`, as either way of running it left them."""
  return runs.Ledger(folder, results=PREDICTIONS_FILE, staged=STAGED_DIR, item="video")


def resume(ledger: runs.Ledger, clips: Sequence[Clip], found: Mapping[str, str],
           labels: Sequence[str], retry_failed: bool
           ) -> tuple[dict[str, dict], dict[str, dict], list[ClipJob], list[Clip]]:
  """(the stored prediction, the standing failure) of each clip done earlier, by id, then the
  found clips still to score with their paths, and the clips neither found nor scored (missing);
  `found` is where each found clip's video (or shard) is."""
  by_id = {c.youtube_id: c for c in clips}
  scored = _checked_predictions(ledger.results, by_id, labels)
  failures = ledger.standing_failures(
      {i: runs.file_state(p) for i, p in found.items()}, set(by_id), retry_failed,
      lambda i, reason: scoring.failure_record(by_id[i], found[i], reason))
  pending = [(c, found[c.youtube_id]) for c in clips if c.youtube_id in found
             and c.youtube_id not in scored and c.youtube_id not in failures]
  missing = [c for c in clips if c.youtube_id not in found and c.youtube_id not in scored]
  return scored, failures, pending, missing


def _score(classifier: Classifier, clips: Sequence[Clip], items: Iterator[tuple],
           found: dict[str, str], pending: int, config: EvalConfig, ledger: runs.Ledger,
           outcomes: tuple[dict[str, dict], dict[str, dict]], progress: bool) -> None:
  """Scores the `pending` clips of `items`, recording each outcome in `ledger` and in
  `outcomes` (predictions, failures by id) as it comes."""
  by_id = {c.youtube_id: c for c in clips}
  scored, failures = outcomes
  with progress_output.outer(len(found), "evaluating", "video", show=progress,
                             initial=len(found) - pending) as bar:
    try:
      for video_id, error, *views in items:
        clip = by_id[video_id.decode()]
        if error:
          failures[clip.youtube_id] = ledger.fail(scoring.failure_record(
              clip, found[clip.youtube_id], error.decode()))
          bar.write(f"failed: {clip.filename}: {error.decode()}", file=sys.stderr)
        else:
          logits = classifier.view_logits(dict(zip(classifier.streams, views)),
                                          config.view_batch)
          scored[clip.youtube_id] = ledger.succeed(scoring.prediction_record(
              clip, logits, classifier.labels, config.top_k, config.save_logits))
        bar.update()
    except Exception as e:
      if not environmental(e):
        raise
      ledger.forget_begun()
      raise runs.machine_failure(e) from e


def _decoded_views(pending: Sequence[ClipJob], found: dict[str, str], streams: Sequence[str],
                   config: EvalConfig, ledger: runs.Ledger) -> Iterator[tuple]:
  """(id, error, *stream views) of each pending video, decoded `config.workers` at a time, one
  video ahead of the model. Ids, not paths, go through TensorFlow, so any file name works.

  Each video is noted as started in `ledger` before it is decoded. The crops travel through
  `tf.data` and become views (`temporal_views`, lazy for windows) only here, one video at a time.
  """
  def load(video_id: tf.Tensor) -> list:
    try:
      video = video_id.numpy().decode()
      ledger.start(video, runs.file_state(found[video]))
      inputs = cropped_inputs(Path(found[video]), config.input_settings, streams,
                              config.protocol.crops, config.use_cache)
      return [""] + [inputs[s] for s in streams]
    except Exception as e:  # noqa: BLE001 - one bad video must not stop a 20,000-video run
      empty = [np.zeros((0, 0, INPUT_SIZE, INPUT_SIZE, STREAM_CHANNELS[s]), np.float32)
               for s in streams]
      return [runs.item_failure(e)] + empty

  def load_map(video_id: tf.Tensor):
    out = tf.py_function(load, [video_id], [tf.string] + [tf.float32] * len(streams))
    return (video_id, *out)

  ids = tf.constant([c.youtube_id for c, _ in pending], tf.string)
  dataset = (tf.data.Dataset.from_tensor_slices(ids)
             .map(load_map, num_parallel_calls=config.workers, deterministic=True).prefetch(1))
  for video_id, error, *crops in dataset.as_numpy_iterator():
    yield (video_id, error) if error else (
        video_id, error, *(temporal_views(c, config.protocol) for c in crops))


def _checked_predictions(log: JsonLines | RemoteLines, clips: dict[str, Clip],
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
    progress_output.warn(f"{log.path}: {ignored} lines name no clip of this run and are ignored")
  return scored

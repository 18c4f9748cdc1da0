"""I3D features: the output of any endpoint for every window of a clip, and for many videos.

A window of `window_frames` frames (at 25 fps) starts every `stride` frames; when frames are
left over after the last full window, one more window ends at the clip's last frame (it
overlaps the one before), so every frame is covered and all windows are equally long. A clip
shorter than a window is looped to one window (`i3d.inputs.views`). `whole_clip` makes the
whole clip one window. Each window's endpoint output is averaged over time and space (`pool`),
e.g. `Mixed_5c` -> 1024 values; `Logits` and `Predictions` are already per window (the logits
averaged over time, as the released model does).

`extract_videos` runs many videos into one folder: `{id}_{stream}.npy` and `{id}.json` per
video, written atomically (the JSON last, so it marks a finished video), resumable, with bad
videos logged to `failures.jsonl` and skipped, and a video that killed the process twice
(noted in the run folder's started log, `i3d.runs.folder`) recorded as failed. `extract_records`
does the same for clips stored as MediaSequence records (`i3d.inputs.records`), read once and
decoded in parallel. Its pieces (`run_jobs`: the locked, resumable loop; `job_outcomes`: the
files of a list of jobs) also make the Beam pipeline `i3d.pipelines.features`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from i3d._util import progress as progress_output
from i3d._util.files import atomic_write, write_json
from i3d.errors import UserError
from i3d.inputs import records
from i3d.inputs import stream as stream_chain
from i3d.inputs.settings import FPS, InputSettings
from i3d.inputs.views import (
  cropped_inputs,
  loop_to_length,
  stored_inputs,
  take_windows,
  window_starts,
)
from i3d.model.checkpoints import load_checkpoint, stream_checkpoint
from i3d.model.fast import FastI3d, precision_dtype
from i3d.model.network import VALID_ENDPOINTS, InceptionI3d
from i3d.model.streams import MIN_FRAMES, STREAM_CHANNELS, STREAMS, InputSpec, checkpoint_names
from i3d.runs import folder as runs

FAILURES_FILE = "failures.jsonl"
STARTED_FILE = ".started.jsonl"  # hidden: the folder's other files are the features
FORMAT = 1
# Endpoints computed through the logits head (see `InputSpec` for what it needs).
HEAD_ENDPOINTS = ("Logits", "Predictions")


@dataclasses.dataclass(frozen=True)
class FeatureSettings:
  """Which endpoint, which windows, and whether each window is averaged over time and space."""
  endpoint: str = "Mixed_5c"
  window_frames: int = 16
  stride: int = 16
  whole_clip: bool = False
  pool: bool = True

  def __post_init__(self):
    if self.endpoint not in VALID_ENDPOINTS:
      raise UserError(f"unknown endpoint {self.endpoint!r}; expected one of "
                      f"{', '.join(VALID_ENDPOINTS)}")
    if not self.whole_clip and (self.window_frames < self.min_frames or self.stride < 1):
      raise UserError(f"windows need window_frames >= {self.min_frames} for {self.endpoint} "
                      f"and stride >= 1; got {self.window_frames} and {self.stride}")

  @property
  def min_frames(self) -> int:
    """The shortest window the endpoint accepts."""
    return MIN_FRAMES if self.endpoint in HEAD_ENDPOINTS else 1

  def windows(self, frames: int) -> tuple[np.ndarray, int]:
    """(start frames, frames per window) of a clip of `frames` frames, before any looping."""
    if self.whole_clip:
      return np.zeros(1, np.int64), max(frames, self.min_frames)
    return window_starts(max(frames, self.window_frames), self.window_frames,
                         stride=self.stride), self.window_frames


class FeatureExtractor:
  """Endpoint features of the released towers of one or two streams.

  `models` are `InceptionI3d`s cut at `settings.endpoint` with restored weights, by stream;
  `checkpoints` names the checkpoint of each. Windows run `batch` at a time. A reduced
  `precision` (bfloat16, float16) runs them as `FastI3d`s in that precision.
  """

  def __init__(self, models: dict[str, InceptionI3d], settings: FeatureSettings,
               checkpoints: dict[str, str], batch: int = 8, precision: str = "float32"):
    if batch < 1:
      raise UserError(f"the window batch must be at least 1, got {batch}")
    precision_dtype(precision)  # an unknown name fails before any window runs
    self.settings = settings
    self.precision = precision
    self.checkpoints = dict(checkpoints)
    self.streams = tuple(models)
    self.batch = batch
    self._run = {s: self._compile(m, STREAM_CHANNELS[s]) for s, m in models.items()}

  def _compile(self, model: InceptionI3d, channels: int):
    """The model as a tf.function over any batch, length and frame size, pooled if asked."""
    pool = self.settings.pool
    spec = tf.TensorSpec([None, None, None, None, channels], tf.float32)
    fast = None if self.precision == "float32" else FastI3d(model, precision_dtype(self.precision))

    @tf.function(input_signature=[spec], autograph=False)
    def run(clips):
      out = model(clips, is_training=False)[0] if fast is None else fast(clips)
      return tf.reduce_mean(out, axis=(1, 2, 3)) if pool and out.shape.rank == 5 else out
    return run

  def clip_features(self, stream: str, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features of every window of one clip (T, H, W, C) in [-1, 1].

    Returns:
      (features, bounds): float32 (windows, ...) (e.g. (windows, 1024) for pooled Mixed_5c),
      and int64 (windows, 2) first and one-past-last frame of each window in the clip.
    """
    clip = np.asarray(clip, np.float32)
    self._spec(stream).check(clip[None], f"{stream} clip")
    starts, length = self.settings.windows(len(clip))
    frames = loop_to_length(clip, length)
    chunks = [self.window_features(stream, take_windows(frames, starts[i:i + self.batch], length))
              for i in range(0, len(starts), self.batch)]
    bounds = np.stack([starts, np.minimum(starts + length, len(clip))], axis=1)
    return np.concatenate(chunks), bounds

  def _spec(self, stream: str) -> InputSpec:
    """What a window of `stream` must be for the endpoint (the Logits' needs for the head)."""
    return InputSpec(STREAM_CHANNELS[stream], None, self.settings.endpoint in HEAD_ENDPOINTS,
                     min_frames=1)

  def window_features(self, stream: str, windows: np.ndarray) -> np.ndarray:
    """Features float32 (n, ...) of windows (n, frames, H, W, C) of `stream`, in one call."""
    self._spec(stream).check_shape(windows.shape, f"{stream} windows")
    return self._run[stream](windows).numpy().astype(np.float32)

  def streamed_features(self, inputs: Iterable[stream_chain.Inputs]) -> VideoFeatures:
    """The features of a clip arriving in blocks (`i3d.inputs.stream`, one crop): each window
    runs (`batch` at a time) once its frames are in, so memory holds a batch of windows and the
    features, whatever the clip's length. Whole-clip features are not streamed."""
    if self.settings.whole_clip:
      raise ValueError("whole-clip features take the whole clip (video_features)")
    features: dict[str, list[np.ndarray]] = {s: [] for s in self.streams}
    bounds: list[tuple[int, int]] = []
    windows = stream_chain.windows(inputs, self.settings.window_frames, stride=self.settings.stride)
    while batch := list(itertools.islice(windows, self.batch)):
      bounds += [(w.start, w.stop) for w in batch]
      for s in self.streams:
        features[s].append(self.window_features(s, np.stack([w.arrays[s][0] for w in batch])))
    return VideoFeatures({s: np.concatenate(f) for s, f in features.items()},
                         np.asarray(bounds, np.int64), bounds[-1][1])

  def record(self, input_settings: InputSettings, stored: Optional[dict] = None) -> dict:
    """`features_record` of this extractor."""
    return features_record(self, input_settings, stored)


@dataclasses.dataclass(frozen=True)
class ExtractorSpec:
  """A feature extractor described (`load_extractor`'s arguments): small enough to ship to Beam
  workers, which load it (`load`), instead of the weights."""
  checkpoints: tuple[tuple[str, str], ...]  # (stream, checkpoint name)
  settings: FeatureSettings = FeatureSettings()
  checkpoint_dir: Optional[str] = None
  batch: int = 8
  precision: str = "float32"
  download: bool = True  # False (`--offline`): never fetch a missing checkpoint

  @property
  def streams(self) -> tuple[str, ...]:
    return tuple(stream for stream, _ in self.checkpoints)

  def load(self) -> FeatureExtractor:
    folder = Path(self.checkpoint_dir) if self.checkpoint_dir else None
    return load_extractor(dict(self.checkpoints), self.settings, folder, download=self.download,
                          batch=self.batch, precision=self.precision)


cached_extractor = functools.lru_cache(maxsize=4)(ExtractorSpec.load)


def features_record(extractor: FeatureExtractor | ExtractorSpec, input_settings: InputSettings,
                    stored: Optional[dict] = None) -> dict:
  """What made a video's features (the `extractor`'s settings, checkpoints and precision, and
  `input_settings`), stored in its JSON and compared when a run resumes; for clips read from
  records, `stored` is the records' `records.settings_record`."""
  record = {"format": FORMAT, "fps": FPS, **dataclasses.asdict(extractor.settings),
            "checkpoints": dict(extractor.checkpoints), "precision": extractor.precision,
            "input": dataclasses.asdict(input_settings)}
  return record if stored is None else {**record, "records": stored}


def load_extractor(checkpoints: dict[str, str], settings: FeatureSettings = FeatureSettings(),
                   checkpoint_dir: Optional[os.PathLike] = None, download: bool = True,
                   batch: int = 8, precision: str = "float32") -> FeatureExtractor:
  """A `FeatureExtractor` of checkpoints {stream: name or path}, e.g. from
  `i3d.choose_checkpoints("joint", rgb="rgb_tfhub")`; missing checkpoints are downloaded unless
  `download` is False."""
  models = {}
  for stream, name in checkpoints.items():
    _, num_classes, _ = stream_checkpoint(stream, name, checkpoint_dir, download=download)
    model = InceptionI3d(num_classes, spatial_squeeze=True, final_endpoint=settings.endpoint)
    load_checkpoint(model, name, checkpoint_dir=checkpoint_dir, download=download)
    models[stream] = model
  return FeatureExtractor(models, settings, checkpoints, batch, precision)


def extract_features(clips: np.ndarray, stream: str = "rgb", endpoint: str = "Mixed_5c", *,
                     window_frames: int = 16, stride: int = 16, whole_clip: bool = False,
                     pool: bool = True, checkpoint: Optional[str] = None,
                     checkpoint_dir: Optional[os.PathLike] = None,
                     imagenet_pretrained: bool = True, download: bool = True,
                     batch: int = 8) -> np.ndarray:
  """Features of every window of every clip: float32 (B, windows, ...), e.g. (B, N, 1024).

  Args:
    clips: float (B, T, H, W, C) in [-1, 1]; C = 3 for RGB, 2 for flow (224x224 as released;
      the Logits endpoints need 193 to 224 pixels a side).
    stream: "rgb" or "flow".
    endpoint: any of `i3d.VALID_ENDPOINTS`.
    window_frames: frames per window (see the module docstring for the windows).
    stride: frames between window starts.
    whole_clip: one window of the whole clip instead.
    pool: average each window's output over time and space (a vector per window).
    checkpoint: a checkpoint of `stream`, a name (e.g. `rgb_tfhub`) or a path (default: the
      released one of `imagenet_pretrained`).
    checkpoint_dir: where checkpoints are (and are downloaded to).
    imagenet_pretrained: ImageNet+Kinetics (default) or Kinetics-only weights.
    download: fetch a missing checkpoint (default) rather than raise.
    batch: windows per model call.

  Returns:
    The features; the model is loaded once and kept for the next call with the same settings.
  """
  if stream not in STREAMS:
    raise UserError(f"unknown stream {stream!r}; expected rgb or flow")
  clips = np.asarray(clips)
  if clips.ndim != 5:
    raise UserError(f"clips must be (batch, frames, height, width, channels); got {clips.shape}")
  checkpoint = checkpoint or checkpoint_names(stream, imagenet_pretrained)[stream]
  settings = FeatureSettings(endpoint, window_frames, stride, whole_clip, pool)
  folder = None if checkpoint_dir is None else str(Path(checkpoint_dir))  # "" is the current folder
  extractor = cached_extractor(ExtractorSpec(((stream, checkpoint),), settings, folder, batch,
                                             download=download))
  return np.stack([extractor.clip_features(stream, clip)[0] for clip in clips])


@dataclasses.dataclass
class ExtractionResult:
  """Ids of the videos written and skipped (already done), and the failures {id, path, reason}."""
  written: list[str] = dataclasses.field(default_factory=list)
  skipped: list[str] = dataclasses.field(default_factory=list)
  failed: list[dict] = dataclasses.field(default_factory=list)


def video_id(source: str | Path) -> str:
  """The output name of a video: its file name without extension (`clip_inputs.npz` -> `clip`)."""
  source = Path(source)
  return source.stem.removesuffix("_inputs") if source.suffix == ".npz" else source.stem


def _subfolder(output_dir: Path, vid: str) -> None:
  """Makes the folders of an id `A/B/NAME` below `output_dir`, refusing links among them."""
  folder = output_dir
  for part in vid.split("/")[:-1]:
    folder = folder / part
    if folder.is_symlink():
      raise UserError(f"{folder} is a link; remove it so {vid}'s features stay in {output_dir}")
    folder.mkdir(exist_ok=True)


def check_jobs(jobs: Sequence[tuple[str, str | Path]]) -> None:
  """Ids must be unique plain file names, or plain names joined by `/` (a labelled set's
  `CLASS/VIDEO` record ids: their files go into subfolders), so outputs stay in the output
  folder."""
  seen: dict[str, str | Path] = {}
  for vid, path in jobs:
    if not all(part and not part.startswith(".") and "\\" not in part and part == part.strip()
               for part in vid.split("/")):
      raise UserError(f"{path}: cannot name output files after {vid!r}; rename the video")
    if vid in seen:
      raise UserError(f"{seen[vid]} and {path} would both be written as {vid}_*.npy; rename "
                      f"one or run them into different --output_dir")
    seen[vid] = path


def _finished(output_dir: Path, vid: str, record: dict) -> bool:
  """Whether `vid` is done with these settings; done with other settings is a UserError."""
  path = output_dir / f"{vid}.json"
  if not path.is_file():  # absent, or a foreign pipe or folder: redo it
    return False
  try:
    done = json.loads(path.read_text())
  except (OSError, json.JSONDecodeError, UnicodeDecodeError):
    return False  # written atomically, so only a foreign file gets here: redo it
  if not isinstance(done, dict) or not isinstance(done.get("settings"), dict):
    return False
  runs.refuse_changes(path, "features", done["settings"], record)
  return all((output_dir / f).exists() for f in done.get("files", {}).values())


# (id, source, None when its files were written or the reason they were not) of each job run.
Outcomes = Iterable[tuple[str, str, Optional[str]]]
# Runs the pending jobs (id, path) of `run_jobs`, writing each one's files with `write_video`;
# the second argument, `start(id, path)`, notes that work on a video begins.
Runner = Callable[[Sequence[tuple[str, str | Path]], Callable[[str, str | Path], None]], Outcomes]


def extract_videos(extractor: FeatureExtractor, jobs: Sequence[tuple[str, str | Path]],
                   output_dir: str | Path, input_settings: InputSettings = InputSettings(),
                   use_cache: bool = True, progress: bool = True) -> ExtractionResult:
  """Features of every video of `jobs` (id, path to a video or an inputs `.npz`) into
  `output_dir`, resuming an earlier run there; see the module docstring for the files."""
  check_jobs(jobs)
  record = extractor.record(input_settings)
  return run_jobs(jobs, output_dir, record, functools.partial(
      job_outcomes, extractor, output_dir, record, input_settings, use_cache=use_cache), progress)


def source_features(extractor: FeatureExtractor, source: str | Path,
                    input_settings: InputSettings, use_cache: bool = True) -> VideoFeatures:
  """The features of one video or inputs `.npz`: from inputs computed earlier (the `.npz`, the
  cache beside the video) when there are some, else streamed from the video (windows as their
  frames arrive; whole-clip features gather the clip)."""
  found = stored_inputs(source, input_settings, extractor.streams, 1, use_cache)
  if found is None and not extractor.settings.whole_clip:
    return extractor.streamed_features(
        stream_chain.video_inputs(source, input_settings, extractor.streams))
  if found is None:
    found = cropped_inputs(source, input_settings, extractor.streams, 1, use_cache)
  return video_features(extractor, found)


def extract_records(extractor: FeatureExtractor, jobs: Mapping[str, str | Path],
                    output_dir: str | Path, stored: dict, input_settings: InputSettings,
                    workers: int = 2, progress: bool = True) -> ExtractionResult:
  """Features of the clips stored in MediaSequence records, like `extract_videos`.

  Args:
    extractor: the endpoint and checkpoints.
    jobs: {`example/id`: the shard holding it}; the id names the output files.
    output_dir: where features go (resumable as with videos).
    stored: the `records.settings_record` the records were made with (records made otherwise
      are refused); each JSON's settings hold it under "records".
    input_settings: the input settings the records were made with (`i3d.kinetics.preprocess.
      records_run`), recorded as videos' are.
    workers: shards read and clips decoded in parallel.
    progress: show a progress bar.
  """
  listed = list(jobs.items())
  check_jobs(listed)
  record = extractor.record(input_settings, stored)
  return run_jobs(listed, output_dir, record, functools.partial(
      job_outcomes, extractor, output_dir, record, input_settings, stored=stored,
      workers=workers), progress)


def job_outcomes(extractor: FeatureExtractor, output_dir: str | Path, record: dict,
                 input_settings: InputSettings, jobs: Sequence[tuple[str, str | Path]],
                 start: Callable[[str, str | Path], None] = lambda vid, path: None,
                 use_cache: bool = True, stored: Optional[dict] = None,
                 workers: int = 1) -> Outcomes:
  """(id, source, None or the reason it failed) of each job, its files written with `record`
  (`write_outcome`): videos (id, path) one after the other (`source_features`; `start(id, path)`
  notes each one begun), or, with `stored`, clips (`example/id`, shard) of records made with it,
  their shards read by `workers` as `records.read_listed` reads (clips a damaged or missing shard
  keeps from being read come last, each with the reason) and each clip cropped as
  `cropped_inputs` crops."""
  def clip_features(clip: records.RecordClip) -> VideoFeatures:  # read without a protocol
    return video_features(extractor, records.clip_crops(
        {s: np.asarray(v) for s, v in clip.inputs.items()}, extractor.streams))

  if stored is not None:
    shards = dict(jobs)
    for key, clip in records.read_listed(shards, extractor.streams, None, stored, workers):
      yield key, str(shards[key]), clip if isinstance(clip, str) else write_outcome(
          output_dir, key, shards[key], record, functools.partial(clip_features, clip))
    return
  for vid, path in jobs:
    start(vid, path)
    yield vid, str(path), write_outcome(output_dir, vid, path, record, functools.partial(
        source_features, extractor, path, input_settings, use_cache))


def write_outcome(output_dir: str | Path, vid: str, source: str | Path, record: dict,
                  compute: Callable[[], VideoFeatures]) -> Optional[str]:
  """Writes the features `compute()` gives a video (`write_video`): None, or the reason they
  could not be (`runs.item_failure`: the machine's failure stops the run instead)."""
  try:
    write_video(Path(output_dir), vid, str(source), compute(), record)
    return None
  except Exception as e:  # noqa: BLE001 - one bad video must not stop the others
    return runs.item_failure(e)


def run_jobs(jobs: Sequence[tuple[str, str | Path]], output_dir: str | Path, record: dict,
             run: Runner, progress: bool = True) -> ExtractionResult:
  """Runs the jobs (`check_jobs`) not finished with `record` in `output_dir` through `run`
  under the folder's lock, appending the failures to `failures.jsonl` in the order `run`
  reports them. A video `run` started (`start`) `runs.MAX_STARTS` times and never finished (it
  killed the process) is recorded as failed instead of run again, until its file changes."""
  output_dir = Path(output_dir)
  with runs.RunFolder(output_dir, "feature extraction").locked() as folder, runs.Ledger(
      folder, failures=FAILURES_FILE, started=STARTED_FILE, item="video",
      retried="when the file changes") as ledger:
    finished = {vid for vid, _ in jobs if _finished(output_dir, vid, record)}
    crashed = ledger.crashes({vid: runs.file_state(path) for vid, path in jobs
                              if vid not in finished}, set())
    pending = [(vid, path) for vid, path in jobs if vid not in finished and vid not in crashed]
    paths = {vid: str(path) for vid, path in jobs}
    outcomes = itertools.chain(((vid, paths[vid], reason) for vid, reason in crashed.items()),
                               run(pending, lambda vid, path: ledger.start(
                                   vid, runs.file_state(path))))
    result = ExtractionResult(skipped=[vid for vid, _ in jobs if vid in finished])
    with progress_output.outer(len(jobs), "features", "video", show=progress,
                               initial=len(finished)) as bar:
      try:
        for vid, path, reason in outcomes:
          if reason is None:
            result.written.append(vid)
          else:
            result.failed.append(ledger.fail({"id": vid, "path": path, "reason": reason}))
            bar.write(f"failed: {path}: {reason}", file=sys.stderr)
          bar.update()
      except UserError:  # the machine's failure: the videos in progress did not kill the run
        ledger.forget_begun()
        raise
  return result


@dataclasses.dataclass
class VideoFeatures:
  """One video's features {stream: (windows, ...)}, its windows' (first, one-past-last) frames
  (windows, 2), and its number of frames."""
  features: dict[str, np.ndarray]
  bounds: np.ndarray
  frames: int


def video_features(extractor: FeatureExtractor, inputs: dict[str, np.ndarray]) -> VideoFeatures:
  """The features of one video's inputs {stream: (1, T, H, W, C)} (`cropped_inputs`)."""
  computed = {s: extractor.clip_features(s, inputs[s][0]) for s in extractor.streams}
  last = extractor.streams[-1]
  return VideoFeatures({s: f for s, (f, _) in computed.items()}, computed[last][1],
                       len(inputs[last][0]))


def write_video(output_dir: Path, vid: str, source: str, computed: VideoFeatures,
                record: dict) -> None:
  """One video's `.npy` files and JSON, each written atomically under a name fixed by `vid`,
  the JSON last (it marks the video finished); an id `CLASS/NAME` writes into the subfolder
  CLASS, which must be a folder of its own, not a link."""
  _subfolder(output_dir, vid)
  files = {}
  for stream, array in computed.features.items():
    target = output_dir / f"{vid}_{stream}.npy"
    with atomic_write(target, "wb") as f:
      np.save(f, array)
    files[stream] = target.relative_to(output_dir).as_posix()
  bounds = computed.bounds.tolist()
  write_json(output_dir / f"{vid}.json", {
      "id": vid, "source": source, "frames": computed.frames,
      "windows": [[round(a / FPS, 6), round(b / FPS, 6)] for a, b in bounds],
      "window_frames": [[a, b] for a, b in bounds],
      "files": files, "settings": record})

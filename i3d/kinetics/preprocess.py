"""Preprocess a Kinetics split once into MediaSequence TFRecord shards; resumable, in parallel.

Clips are assigned to `num_shards` shards in annotation order (contiguous, balanced). Each clip
is encoded by a worker process (`i3d.inputs.records.encode_clip`: RGB JPEGs and quantised TV-L1
flow) into `.staging/KEY.pb`, written atomically. When every clip of a shard is staged or has
failed, the shard is written under a temporary name, renamed to `NAME-0000i-of-0000N.tfrecord`
(`.tfrecord.gz` when GZIP-compressed),
listed in `manifest.jsonl` (which clip is in which shard) and its staged files removed. The clips
are Kinetics windows (labelled from the Kinetics-`label_version` map) or whole videos of another
labelled set (`i3d.datasets`: `Clip.video`, labelled from `PreprocessConfig.labels`, which is
written beside the records as `labels.txt`, line i naming class i). A run
killed at any moment loses at most the clips being encoded; a rerun does only what is missing,
and every clip ends in exactly one shard. Missing and undecodable videos are listed with the
reason in `failures.jsonl`; `records.json` holds the settings, and a rerun with others is refused.
A clip that failed for the machine's reasons (a full disk, permissions, a killed worker: see
`files.environmental`) is not listed there: its shard stays open and a rerun encodes it again.

`video_dir` and `output_dir` may also be on any filesystem `tf.io.gfile` reaches (gs://, s3://,
...), as a Beam run on a cluster needs (`i3d.pipelines.preprocess`): files go through
`i3d._util.storage`, and the manifest and failure lists, which such filesystems cannot append
to, are rewritten whole (atomically) before anything depends on them (`jsonl.RemoteLines`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from i3d._util import progress as progress_output
from i3d._util import storage
from i3d._util.files import environmental
from i3d._util.jsonl import JsonLines, RemoteLines, open_lines
from i3d.errors import UserError
from i3d.inputs import records
from i3d.inputs.settings import FPS, InputSettings
from i3d.kinetics.annotations import Clip, clip_list, video_files
from i3d.kinetics.recordset import MANIFEST_FILE, SETTINGS_FILE, clip_key
from i3d.model.labels import CLASS_LIST_FILE, class_list_text, load_label_map, parse_class_list
from i3d.model.streams import STREAMS
from i3d.runs import executors
from i3d.runs.folder import RunFolder, failure_reason

FAILURES_FILE = "failures.jsonl"
STAGING_DIR = ".staging"
CLIPS_PER_SHARD = 100
# What encoding one clip gives: (key, frames, error or "", whether a rerun should retry it).
Result = tuple[str, int, str, bool]


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
  """What goes into the records (`settings`, `encoding`, `streams`; the class list: `labels`, or
  when empty the Kinetics-`label_version` map) and how they are laid out and made (`name`,
  `num_shards`, `compression` of the shard files: see `records.COMPRESSIONS`, `workers`)."""
  settings: InputSettings = InputSettings()
  encoding: records.Encoding = records.Encoding()
  streams: tuple[str, ...] = STREAMS
  name: str = "clips"
  num_shards: int | None = None
  compression: str = "none"
  workers: int = 1
  label_version: int = 400
  labels: tuple[str, ...] = ()

  def __post_init__(self):
    records.check_shard_prefix(self.name)
    unknown = sorted(set(self.streams) - set(STREAMS))
    if unknown or not self.streams:
      raise UserError(f"unknown stream {', '.join(unknown) or '(none)'}; choose rgb, flow or "
                      f"rgb,flow")

  def class_list(self) -> tuple[str, ...]:
    """The class names, in label index order."""
    return self.labels or load_label_map(self.label_version)


def clip_info(clip: Clip, data_path: str, labels: Sequence[str]) -> records.ClipInfo:
  """The record metadata of an annotated clip (label index: its position in `labels`)."""
  index = labels.index(clip.label) if clip.label in labels else None
  return records.ClipInfo(clip_key(clip), data_path, clip.youtube_id, clip.time_start * 1_000_000,
                          clip.time_end * 1_000_000, clip.label, index)


def plan(clips: Sequence[Clip], num_shards: int) -> list[list[Clip]]:
  """`clips` in order, cut into `num_shards` contiguous runs whose sizes differ by at most one."""
  bounds = [round(i * len(clips) / num_shards) for i in range(num_shards + 1)]
  return [list(clips[a:b]) for a, b in zip(bounds, bounds[1:])]


def _settings(clips: Sequence[Clip], config: PreprocessConfig, num_shards: int) -> dict:
  """`records.json`: the record settings, the shard layout and digests of the clip list and
  (for a set other than Kinetics) of the class list."""
  labels = ({"num_classes": len(config.labels), "labels_sha256": hashlib.sha256(
      class_list_text(config.labels).encode()).hexdigest()} if config.labels
            else {"label_version": config.label_version})
  return {"records": records.settings_record(config.settings, config.encoding, config.streams),
          "name": config.name, "num_shards": num_shards, "compression": config.compression,
          **clip_list(clips), **labels}


@dataclasses.dataclass(frozen=True)
class EncodeJob:
  """One clip for a worker: encode `video` into the staged file `staged`, as `config` says."""
  key: str
  video: str
  info: records.ClipInfo
  staged: str
  config: PreprocessConfig


def encode_job(job: EncodeJob) -> Result:
  """(key, frames, error, retry) after encoding one clip into its staged file (run in a worker).

  The example is serialized deterministically (map fields in key order), so a clip's record is
  the same bytes whichever process or machine encodes it. A remote video is read from a local
  copy; errors name the video, not the copy. `retry` is true when the failure is the machine's
  (`files.environmental`: a full disk, permissions, memory), not the clip's: such a clip is not
  listed as failed, and a rerun encodes it again.
  """
  video = job.video
  try:
    with storage.local_copy(job.video) as local:
      video = str(local)
      example = records.encode_clip(
          local, job.info, job.config.settings, job.config.encoding, job.config.streams)
    storage.write_bytes(job.staged, example.SerializeToString(deterministic=True))
    frames = len(example.feature_lists.feature_list[records.ENCODED].feature)
    return job.key, frames, "", False
  except Exception as e:  # noqa: BLE001 - one bad video must not stop a split
    return job.key, 0, failure_reason(e).replace(video, job.video), environmental(e)


def _died(job: EncodeJob, error: Exception) -> Result:
  """What a job whose pool worker died (killed, out of memory) gives: a failure to retry."""
  return job.key, 0, f"its worker process died ({error})", True


class _Shards:
  """The shard plan and what is done: closes a shard once all its clips are staged or failed."""

  def __init__(self, output_dir: str, config: PreprocessConfig, layout: list[list[Clip]],
               failures: JsonLines | RemoteLines):
    self.output_dir, self.layout, self.failures = output_dir, layout, failures
    self.name, self.compression = config.name, config.compression
    self.staging = storage.join(output_dir, STAGING_DIR)
    self.manifest = open_lines(storage.join(output_dir, MANIFEST_FILE))
    self.closed = {r["shard"] for r in self.manifest.records}
    staged = set(storage.list_names(self.staging, ".pb"))
    self.ready = {clip_key(c) for s in layout for c in s if staged_name(clip_key(c)) in staged}
    # Clips that failed for the machine's reasons (key -> why): never left out of a shard.
    self.retry: dict[str, str] = {}

  def shard(self, index: int) -> str:
    return records.shard_name(self.name, index, len(self.layout), self.compression)

  def staged(self, clip: Clip) -> str:
    return storage.inside(self.staging, staged_name(clip_key(clip)))

  def failed(self) -> set[str]:
    return {r["id"] for r in self.failures.records}

  def open_clips(self) -> list[Clip]:
    """Clips of shards not yet closed."""
    return [c for i, s in enumerate(self.layout) if self.shard(i) not in self.closed for c in s]

  def clean(self) -> None:
    """Removes what a killed run left: temporary files, and staged clips of closed shards."""
    for folder in (self.output_dir, self.staging):
      storage.remove_temporaries(folder)
    for index, clips in enumerate(self.layout):
      if self.shard(index) in self.closed:
        self._unstage(clips)

  def _unstage(self, clips: Iterable[Clip]) -> None:
    for clip in clips:
      if clip_key(clip) in self.ready:
        storage.remove(self.staged(clip))
        self.ready.discard(clip_key(clip))

  def close_ready(self) -> None:
    """Writes (or, after a kill between rename and manifest, lists) every shard that is ready.

    The failures are synced before a shard that leaves them out is written, and the manifest
    before the staged clips of the shards it lists are removed.
    """
    failed = self.failed()
    closing = []
    for index, clips in enumerate(self.layout):
      name = self.shard(index)
      if name in self.closed:
        continue
      kept = [c for c in clips if clip_key(c) not in failed]
      if not all(clip_key(c) in self.ready for c in kept):
        continue
      self.failures.sync()
      path = storage.inside(self.output_dir, name)
      if not storage.exists(path):
        records.write_shard(path, (storage.read_bytes(self.staged(c)) for c in kept))
      self.manifest.append({"shard": name, "clips": [manifest_entry(c) for c in kept]})
      self.closed.add(name)
      closing += kept
    self.manifest.sync()
    self._unstage(closing)


def manifest_entry(clip: Clip) -> dict:
  """What the manifest says of a clip in a shard (`recordset.manifest_clips` reads it back)."""
  entry = {"id": clip_key(clip), "youtube_id": clip.youtube_id, "time_start": clip.time_start,
           "time_end": clip.time_end, "split": clip.split, "label": clip.label}
  return entry if clip.video is None else {**entry, "video": clip.video}


_PLAIN_KEY = re.compile(r"^[^/\\\x00.][^/\\\x00]{0,199}$")


def staged_name(key: str) -> str:
  """The file name of a clip's staged example: `KEY.pb`, or, for a key that is no plain file name
  (a dataset video's path), `~` and its SHA-256 `.pb`."""
  if _PLAIN_KEY.match(key):
    return f"{key}.pb"
  return f"~{hashlib.sha256(key.encode()).hexdigest()}.pb"


# Runs `encode_job` over the jobs (an executor of `i3d.runs.executors` bound to it).
Encoder = Callable[[Sequence[EncodeJob]], Iterable[Result]]


def pool_encoder(workers: int) -> Encoder:
  """`encode_job` in this process (one worker) or a pool of `workers` processes sharing the
  cores, where a job whose worker died is a failure to retry (`executors.process_pool`)."""
  pool = executors.process_pool(workers, died=_died)
  return lambda jobs: pool(encode_job, jobs)


def preprocess(clips: Sequence[Clip], video_dir: str | Path, output_dir: str | Path,
               config: PreprocessConfig = PreprocessConfig(), progress: bool = True,
               encoder: Encoder | None = None) -> dict:
  """Writes the records of `clips` found under `video_dir` into `output_dir`, resuming what an
  earlier run left; returns a summary (shards, clips written, failures, clips to retry and the
  first one's reason: `retry`, `retry_reason`). `encoder` runs
  `encode_job` over the jobs (default: a pool of `config.workers` processes; `i3d.pipelines`
  passes a Beam pipeline)."""
  keys = [clip_key(c) for c in clips]
  if len(set(keys)) != len(keys) or len(set(map(staged_name, keys))) != len(keys):
    raise UserError("a clip appears twice in the annotations; each clip goes in one record")
  unknown = sorted({c.label for c in clips if c.label is not None and c.video is not None}
                   - set(config.class_list()))
  if unknown:
    raise UserError(f"label {unknown[0]!r} is not in the class list; give a class list that "
                    f"holds every label")
  output_dir, video_dir = storage.join(output_dir), storage.join(video_dir)
  with RunFolder(output_dir, "preprocessing run").locked() as folder:
    output_dir, encoder = folder.path, encoder or pool_encoder(config.workers)
    num_shards = config.num_shards or max(1, -(-len(clips) // CLIPS_PER_SHARD))
    if not 1 <= num_shards <= max(1, len(clips)):
      raise UserError(f"--num_shards must be between 1 and the number of clips ({len(clips)})")
    folder.check_settings(_settings(clips, config, num_shards), SETTINGS_FILE, "records")
    if config.labels:
      _write_labels(folder, config.labels)
    with open_lines(storage.join(output_dir, FAILURES_FILE)) as failures:
      shards = _Shards(output_dir, config, plan(clips, num_shards), failures)
      storage.makedirs(shards.staging)
      shards.close_ready()
      shards.clean()
      done = shards.failed()
      todo = [c for c in shards.open_clips()
              if clip_key(c) not in done and clip_key(c) not in shards.ready]
      videos = _videos(todo, video_dir)
      jobs = []
      for clip in todo:
        video = videos.get(clip_key(clip))
        if video is None:
          failures.append({"id": clip_key(clip), "filename": clip.filename,
                           "reason": f"missing: no {clip.filename} under {video_dir}"})
          continue
        jobs.append(EncodeJob(clip_key(clip), video, clip_info(
            clip, _relative(video, video_dir), config.class_list()), shards.staged(clip), config))
      _run(jobs, encoder, shards, progress)
      shards.close_ready()
      shards.manifest.close()
      written = sum(len(r["clips"]) for r in shards.manifest.records)
      return {"output_dir": output_dir, "shards": len(shards.closed), "num_shards": num_shards,
              "clips": written, "failed": len(failures.records), "retry": len(shards.retry),
              "retry_reason": next(iter(shards.retry.values()), "")}


def _relative(path: str, root: str) -> str:
  """`path` below the folder `root`, with forward slashes."""
  if storage.is_remote(root):
    return posixpath.relpath(path, root)
  return Path(path).relative_to(root).as_posix()


def _write_labels(folder: RunFolder, labels: Sequence[str]) -> None:
  """Writes `labels.txt`; one that lists other classes (edited since) is refused."""
  path = folder.file(CLASS_LIST_FILE)
  if storage.exists(path) and parse_class_list(storage.read_bytes(path), path) != tuple(labels):
    raise UserError(f"{path} lists other classes than these records were made with; restore it "
                    f"or use a new --output_dir")
  storage.write_bytes(path, class_list_text(labels).encode())


def _videos(clips: Sequence[Clip], video_dir: str) -> dict[str, str]:
  """{clip key: its video} of the clips whose video is there: Kinetics clips by file name
  anywhere below `video_dir`, dataset videos at their path, which must stay inside it."""
  found = {}
  if any(c.video is None for c in clips):
    by_name = video_files(video_dir)
    found = {clip_key(c): by_name[c.filename] for c in clips
             if c.video is None and c.filename in by_name}
  for clip in clips:
    if clip.video is not None:
      path = storage.inside(video_dir, *clip.video.split("/"))
      if storage.exists(path):
        found[clip_key(clip)] = path
  return found


def _run(jobs: Sequence[EncodeJob], encoder: Encoder, shards: _Shards, progress: bool) -> None:
  """Encodes `jobs` with a progress bar (clips/s, frame pairs/s, ETA), closing shards as they fill.
  """
  with progress_output.outer(len(jobs), "preprocess", "clip", show=progress) as bar:
    by_key = {j.key: j for j in jobs}
    pairs, started = 0, time.monotonic()
    flow = "flow" in (jobs[0].config.streams if jobs else ())
    for key, frames, error, retry in encoder(jobs):
      filename = posixpath.basename(by_key[key].video)
      if retry:  # summed up by the caller (`retry`, `retry_reason`): a full disk fails them all
        shards.retry[key] = f"{filename}: {error}"
      elif error:
        shards.failures.append({"id": key, "filename": filename, "reason": error})
        bar.write(f"failed: {filename}: {error}")
      else:
        shards.ready.add(key)
      pairs += max(0, frames - 1) if flow else 0
      bar.set_postfix_str(f"{pairs / max(time.monotonic() - started, 1e-9):.1f} pairs/s"
                          if flow else f"{frames / FPS:.1f} s clip")
      bar.update()
      shards.close_ready()

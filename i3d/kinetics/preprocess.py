"""Preprocess a Kinetics split once into MediaSequence TFRecord shards; resumable, in parallel.

Clips are assigned to `num_shards` shards in annotation order (contiguous, balanced). Each clip
is encoded by a worker process (`i3d.inputs.records.encode_clip`: RGB JPEGs and quantised TV-L1
flow) into `.staging/KEY.pb`, written atomically. When every clip of a shard is staged or has
failed, the shard is written under a temporary name, renamed to `NAME-0000i-of-0000N.tfrecord`
(`.tfrecord.gz` when GZIP-compressed),
listed in `manifest.jsonl` (which clip is in which shard) and its staged files removed. A run
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

import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
import posixpath
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from i3d._util import lifeline, storage
from i3d._util import progress as progress_output
from i3d._util.files import environmental
from i3d._util.jsonl import JsonLines, RemoteLines, open_lines
from i3d._util.jsonl import read as read_lines
from i3d.errors import UserError
from i3d.inputs import records
from i3d.inputs.settings import FPS, InputSettings, TVL1Params
from i3d.inputs.views import Protocol
from i3d.kinetics.annotations import Clip, IndexRow, video_files
from i3d.model.labels import load_label_map
from i3d.model.streams import STREAMS

SETTINGS_FILE = "records.json"
MANIFEST_FILE = "manifest.jsonl"
FAILURES_FILE = "failures.jsonl"
STAGING_DIR = ".staging"
CLIPS_PER_SHARD = 100
# What encoding one clip gives: (key, frames, error or "", whether a rerun should retry it).
Result = tuple[str, int, str, bool]


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
  """What goes into the records (`settings`, `encoding`, `streams`) and how they are laid out and
  made (`name`, `num_shards`, `compression` of the shard files: see `records.COMPRESSIONS`,
  `workers`)."""
  settings: InputSettings = InputSettings()
  encoding: records.Encoding = records.Encoding()
  streams: tuple[str, ...] = STREAMS
  name: str = "clips"
  num_shards: int | None = None
  compression: str = "none"
  workers: int = 1
  label_version: int = 400

  def __post_init__(self):
    records.check_shard_prefix(self.name)


def clip_key(clip: Clip) -> str:
  """A clip's `example/id`: its file name without `.mp4`."""
  return clip.filename.removesuffix(".mp4")


def clip_info(clip: Clip, data_path: str, version: int = 400) -> records.ClipInfo:
  """The record metadata of an annotated clip (label index from the Kinetics-`version` map)."""
  labels = load_label_map(version)
  index = labels.index(clip.label) if clip.label in labels else None
  return records.ClipInfo(clip_key(clip), data_path, clip.youtube_id, clip.time_start * 1_000_000,
                          clip.time_end * 1_000_000, clip.label, index)


def plan(clips: Sequence[Clip], num_shards: int) -> list[list[Clip]]:
  """`clips` in order, cut into `num_shards` contiguous runs whose sizes differ by at most one."""
  bounds = [round(i * len(clips) / num_shards) for i in range(num_shards + 1)]
  return [list(clips[a:b]) for a, b in zip(bounds, bounds[1:])]


def _settings(clips: Sequence[Clip], config: PreprocessConfig, num_shards: int) -> dict:
  """`records.json`: the record settings, the shard layout and a digest of the clip list."""
  listing = "\n".join(f"{c.filename}\t{c.label}" for c in clips).encode()
  return {"records": records.settings_record(config.settings, config.encoding, config.streams),
          "name": config.name, "num_shards": num_shards, "compression": config.compression,
          "num_clips": len(clips),
          "clips_sha256": hashlib.sha256(listing).hexdigest(),
          "label_version": config.label_version}


def _check_settings(output_dir: str, record: dict) -> None:
  """Writes `records.json` on a first run; a rerun with other settings is refused."""
  path = storage.join(output_dir, SETTINGS_FILE)
  if not storage.exists(path):
    storage.write_bytes(path, json.dumps(record, indent=1, allow_nan=False).encode())
    return
  try:
    earlier = json.loads(storage.read_bytes(path))
  except (OSError, ValueError) as e:
    raise UserError(f"{path}: unreadable ({e}); remove {output_dir} to start again") from None
  changed = [k for k in sorted(set(earlier) | set(record)) if earlier.get(k) != record.get(k)]
  if changed:
    raise UserError(f"{output_dir} holds records made with other settings or clips (changed: "
                    f"{', '.join(changed)}); rerun with the earlier settings or use a new "
                    f"--output_dir")


@dataclasses.dataclass(frozen=True)
class _Job:
  """One clip for a worker: encode `video` into the staged file `staged`."""
  key: str
  video: str
  info: records.ClipInfo
  staged: str
  settings: InputSettings
  encoding: records.Encoding
  streams: tuple[str, ...]


def encode_job(job: _Job) -> Result:
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
      example = records.encode_clip(local, job.info, job.settings, job.encoding, job.streams)
    storage.write_bytes(job.staged, example.SerializeToString(deterministic=True))
    frames = len(example.feature_lists.feature_list[records.ENCODED].feature)
    return job.key, frames, "", False
  except UserError as e:
    return job.key, 0, str(e).replace(video, job.video), environmental(e)
  except Exception as e:  # noqa: BLE001 - one bad video must not stop a split
    return (job.key, 0, f"{type(e).__name__}: {e}".replace(video, job.video), environmental(e))


def _init_worker(threads: int) -> None:
  """Each worker process gets its share of the cores, and dies with its launcher."""
  lifeline.die_with_parent()
  import cv2  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  cv2.setNumThreads(threads)
  tf.config.threading.set_intra_op_parallelism_threads(threads)
  tf.config.threading.set_inter_op_parallelism_threads(1)


def _results(jobs: Sequence[_Job], workers: int) -> Iterator[Result]:
  """`encode_job` of each job as they finish: in this process with one worker, else in a pool of
  `workers` processes sharing the cores. A job whose worker died (killed, out of memory) is a
  failure to retry."""
  if workers <= 1:
    yield from map(encode_job, jobs)
    return
  threads = max(1, (os.cpu_count() or 1) // workers)
  with concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
      initargs=(threads,)) as pool:
    futures = {pool.submit(encode_job, job): job.key for job in jobs}
    try:
      for future in concurrent.futures.as_completed(futures):
        try:
          yield future.result()
        except BrokenProcessPool as e:
          yield futures[future], 0, f"its worker process died ({e})", True
    finally:
      for future in futures:
        future.cancel()


class _Shards:
  """The shard plan and what is done: closes a shard once all its clips are staged or failed."""

  def __init__(self, output_dir: str, config: PreprocessConfig, layout: list[list[Clip]],
               failures: JsonLines | RemoteLines):
    self.output_dir, self.layout, self.failures = output_dir, layout, failures
    self.name, self.compression = config.name, config.compression
    self.staging = storage.join(output_dir, STAGING_DIR)
    self.manifest = open_lines(storage.join(output_dir, MANIFEST_FILE))
    self.closed = {r["shard"] for r in self.manifest.records}
    self.ready = {n.removesuffix(".pb") for n in storage.list_names(self.staging, ".pb")}
    self.retry: set[str] = set()  # clips that failed for the machine's reasons: never left out

  def shard(self, index: int) -> str:
    return records.shard_name(self.name, index, len(self.layout), self.compression)

  def staged(self, clip: Clip) -> str:
    return storage.inside(self.staging, f"{clip_key(clip)}.pb")

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
      self.manifest.append({"shard": name, "clips": [
          {"id": clip_key(c), "youtube_id": c.youtube_id, "time_start": c.time_start,
           "time_end": c.time_end, "split": c.split, "label": c.label} for c in kept]})
      self.closed.add(name)
      closing += kept
    self.manifest.sync()
    self._unstage(closing)


Encoder = Callable[[Sequence["_Job"]], Iterable[Result]]


def preprocess(clips: Sequence[Clip], video_dir: str | Path, output_dir: str | Path,
               config: PreprocessConfig = PreprocessConfig(), progress: bool = True,
               encoder: Encoder | None = None) -> dict:
  """Writes the records of `clips` found under `video_dir` into `output_dir`, resuming what an
  earlier run left; returns a summary (shards, clips written, failures). `encoder` runs
  `encode_job` over the jobs (default: a pool of `config.workers` processes; `i3d.pipelines`
  passes a Beam pipeline)."""
  keys = [clip_key(c) for c in clips]
  if len(set(keys)) != len(keys):
    raise UserError("a clip appears twice in the annotations; each clip goes in one record")
  output_dir, video_dir = _folder(output_dir), _folder(video_dir)
  storage.makedirs(output_dir)
  with storage.locked(output_dir, f"another preprocessing run is writing to {output_dir}"):
    return _preprocess_locked(clips, video_dir, output_dir, config, progress,
                              encoder or (lambda jobs: _results(jobs, config.workers)))


def _folder(path: str | Path) -> str:
  """A folder as `storage` takes it: a remote URL as given, a local path as `Path` spells it."""
  return str(path) if storage.is_remote(path) else str(Path(path))


def _relative(path: str, root: str) -> str:
  """`path` below the folder `root`, with forward slashes."""
  if storage.is_remote(root):
    return posixpath.relpath(path, root)
  return Path(path).relative_to(root).as_posix()


def _preprocess_locked(clips: Sequence[Clip], video_dir: str, output_dir: str,
                       config: PreprocessConfig, progress: bool, encoder: Encoder) -> dict:
  """The locked body of `preprocess`."""
  num_shards = config.num_shards or max(1, -(-len(clips) // CLIPS_PER_SHARD))
  if not 1 <= num_shards <= max(1, len(clips)):
    raise UserError(f"--num_shards must be between 1 and the number of clips ({len(clips)})")
  _check_settings(output_dir, _settings(clips, config, num_shards))
  with open_lines(storage.join(output_dir, FAILURES_FILE)) as failures:
    shards = _Shards(output_dir, config, plan(clips, num_shards), failures)
    storage.makedirs(shards.staging)
    shards.close_ready()
    shards.clean()
    done = shards.failed()
    todo = [c for c in shards.open_clips()
            if clip_key(c) not in done and clip_key(c) not in shards.ready]
    videos = video_files(video_dir) if todo else {}
    jobs = []
    for clip in todo:
      video = videos.get(clip.filename)
      if video is None:
        failures.append({"id": clip_key(clip), "filename": clip.filename,
                         "reason": f"missing: no {clip.filename} under {video_dir}"})
        continue
      jobs.append(_Job(clip_key(clip), video, clip_info(
          clip, _relative(video, video_dir), config.label_version), shards.staged(clip),
          config.settings, config.encoding, tuple(config.streams)))
    _run(jobs, encoder, shards, progress)
    shards.close_ready()
    shards.manifest.close()
    written = sum(len(r["clips"]) for r in shards.manifest.records)
    return {"output_dir": output_dir, "shards": len(shards.closed), "num_shards": num_shards,
            "clips": written, "failed": len(failures.records), "retry": len(shards.retry)}


def _run(jobs: Sequence[_Job], encoder: Encoder, shards: _Shards, progress: bool) -> None:
  """Encodes `jobs` with a progress bar (clips/s, frame pairs/s, ETA), closing shards as they fill.
  """
  bar = progress_output.outer(len(jobs), "preprocess", "clip", show=progress)
  by_key = {j.key: j for j in jobs}
  pairs, started = 0, time.monotonic()
  flow = "flow" in (jobs[0].streams if jobs else ())
  try:
    for key, frames, error, retry in encoder(jobs):
      filename = posixpath.basename(by_key[key].video)
      if retry:
        shards.retry.add(key)
        bar.write(f"not done (rerun to retry; its shard waits for it): {filename}: {error}")
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
  finally:
    bar.close()


def read_manifest(records_dir: str | Path) -> tuple[dict, list[dict]]:
  """(`records.json`, manifest lines) of a records folder (local or remote); a folder that is not
  one is a `UserError`."""
  records_dir = _folder(records_dir)
  settings_path = storage.join(records_dir, SETTINGS_FILE)
  if not storage.exists(settings_path):
    raise UserError(f"{records_dir}: not a records folder (no {SETTINGS_FILE}); make one with "
                    f"`i3d preprocess --annotations ... --output_dir {records_dir}`")
  try:
    settings = json.loads(storage.read_bytes(settings_path))
  except (OSError, ValueError) as e:
    raise UserError(f"{settings_path}: unreadable ({e})") from None
  if not isinstance(settings, dict) or not isinstance(settings.get("records"), dict):
    raise UserError(f"{settings_path}: not the settings of a records folder (a JSON object with "
                    f"\"records\"); remake the folder with `i3d preprocess`")
  return settings, read_lines(storage.join(records_dir, MANIFEST_FILE))


def manifest_clips(lines: Sequence[dict]) -> dict[str, tuple[str, Clip]]:
  """{clip key: (shard name, Clip)} of manifest lines; a shard that is not named as
  `records.shard_name` names shards (a path) is a `UserError`."""
  located = {}
  for number, line in enumerate(lines, 1):
    shard = line.get("shard")
    if not isinstance(shard, str) or not records.is_shard_name(shard) or "/" in shard \
        or "\\" in shard:
      raise UserError(f"{MANIFEST_FILE}: {shard!r} is not a shard of the folder; the "
                      f"manifest is damaged")
    try:
      for c in line["clips"]:
        located[c["id"]] = (shard, _manifest_clip(c))
    except (KeyError, TypeError, ValueError) as e:
      raise UserError(f"{MANIFEST_FILE}: line {number} is damaged ({type(e).__name__}: {e}); "
                      f"remake the folder with `i3d preprocess`") from None
  return located


def _manifest_clip(entry: dict) -> Clip:
  """The `Clip` of a manifest entry; fields of the wrong type are a `ValueError`."""
  times = entry["time_start"], entry["time_end"]
  if not all(type(t) is int and t >= 0 for t in times):  # pylint: disable=unidiomatic-typecheck
    raise ValueError(f"clip times {times} are not whole seconds")
  texts = entry["id"], entry["youtube_id"], entry["split"]
  if not all(isinstance(t, str) for t in texts) or not isinstance(entry["label"],
                                                                   (str, type(None))):
    raise ValueError("clip names are not strings")
  return Clip(entry["youtube_id"], *times, entry["split"], entry["label"])


def records_run(records_dir: str | Path, clips: Sequence[Clip] | None,
                flow_backend: str | None = None) -> tuple[list[Clip], InputSettings]:
  """The clips and input settings of scoring from `records_dir`.

  Args:
    records_dir: a folder `preprocess` wrote.
    clips: annotated clips to score (those not in the records count as missing), or None for
      every labelled clip in the records.
    flow_backend: the backend the user asked for, if any: records made with another are refused.

  Returns:
    (clips, the input settings the records were made with).
  """
  settings, lines = read_manifest(records_dir)
  made = settings["records"]
  if flow_backend is not None and made.get("flow_backend") not in (None, flow_backend):
    raise UserError(f"{storage.join(records_dir, SETTINGS_FILE)}: records made with flow backend "
                    f"{made['flow_backend']!r}, not the requested {flow_backend!r}")
  if clips is None:
    clips = [clip for _, clip in manifest_clips(lines).values() if clip.label is not None]
  params = made.get("flow_params")
  inputs = InputSettings(made["time_start"], made["time_end"], made["flow_backend"] or "tf",
                         TVL1Params(**params) if params else TVL1Params())
  return list(clips), inputs


def record_rows(clips: Sequence[Clip], records_dir: str | Path) -> list[IndexRow]:
  """Where each clip is in the records: "found" with its shard's path, or "missing"."""
  located = manifest_clips(read_manifest(records_dir)[1])
  rows = []
  for clip in clips:
    shard = located.get(clip_key(clip), (None, None))[0]
    rows.append(IndexRow(clip, "found", _shard_path(records_dir, shard)) if shard
                else IndexRow(clip, "missing", None))
  return rows


def _shard_path(records_dir: str | Path, shard: str) -> str | Path:
  """The path of the shard `shard` in `records_dir` (a `Path` when local)."""
  if storage.is_remote(records_dir):
    return storage.join(str(records_dir), shard)
  return Path(records_dir) / shard


def record_items(records_dir: str | Path, rows: Sequence[IndexRow], streams: Sequence[str],
                 protocol: Protocol, workers: int) -> Iterator[tuple]:
  """(youtube id, error, *stream views) of each found row, read from its shard.

  Clips a damaged shard or record keeps from being read come last, with the reason (the shard's
  own check names the file).
  """
  made = read_manifest(records_dir)[0]["records"]
  wanted = {clip_key(r.clip): r for r in rows}
  listed = {key: row.path for key, row in wanted.items() if row.path is not None}
  for key, item in records.read_listed(listed, streams, protocol, made, workers):
    youtube_id = wanted[key].clip.youtube_id.encode()
    if isinstance(item, str):
      yield youtube_id, item.encode()
    else:
      yield (youtube_id, b"", *(item.inputs[s] for s in streams))

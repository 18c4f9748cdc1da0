"""Kinetics videos: clips from YouTube (yt-dlp) or whole splits from the CVDF mirror.

Both paths run a pool of `num_workers` threads, skip clips already on disk, move files into
place only when complete, and append one JSON line per clip or shard to
`{video_dir}/download_report.jsonl`. That file plus the finished files are the whole state, so a
run killed at any point (even SIGKILL) resumes without losing or refetching anything.
"""

import concurrent.futures
import dataclasses
import functools
import json
import os
import posixpath
import re
import shutil
import tarfile
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from i3d._util import env, extras, text
from i3d._util import progress as progress_output
from i3d._util.files import file_sha256, inside, write_json
from i3d._util.http import download
from i3d._util.jsonl import JsonLines
from i3d._util.retry import retry
from i3d.errors import DownloadError, UserError
from i3d.inputs.decode import is_readable
from i3d.kinetics import annotations as kinetics
from i3d.kinetics.annotations import Clip

REPORT_NAME = "download_report.jsonl"
YOUTUBE_URL = "https://www.youtube.com/watch?v={youtube_id}"
CVDF_BASE_URL = "https://s3.amazonaws.com/kinetics"
# Folder of each version on the CVDF mirror, and its annotation files per split.
_CVDF_FOLDER = {400: "400", 600: "600", 700: "700_2020"}
_CVDF_ANNOTATIONS = {
    400: {"train": "train.csv", "validation": "val.csv", "test": "test.csv"},
    600: {"train": "train.txt", "validation": "val.txt", "test": "test.csv"},
    700: {"train": "train.csv", "validation": "val.csv", "test": "test.csv"},
}
_CVDF_SPLIT = {"train": "train", "validation": "val", "test": "test"}
# Every official annotation file has more rows than this (the smallest, Kinetics-400
# validation, about 20,000); a cached file with fewer and no record of its fetch is not one.
MIN_OFFICIAL_ROWS = 10_000
TRANSIENT = frozenset({"network", "rate_limited"})
# A shard name from a shard list: a plain file name, never a path.
_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.tar\.gz$")
# Failure reasons recognised in yt-dlp's messages, checked in order (first match wins).
_REASONS = (
    ("private", ("private video", "video is private")),
    ("rate_limited", ("not a bot", "http error 429", "too many requests")),
    ("blocked", ("your country", "geo restrict", "geo-restrict", "blocked", "copyright",
                 "confirm your age", "age-restricted", "inappropriate", "members-only",
                 "join this channel")),
    ("unavailable", ("unavailable", "not available", "has been removed", "account associated",
                     "terminated", "does not exist", "http error 404", "http error 410",
                     "unsupported url", "no video formats", "requested format")),
    ("network", ("timed out", "timeout", "connection", "temporary failure", "network",
                 "http error 5", "unable to download", "urlopen error", "incompleteread",
                 "remote end closed", "ssl", "name resolution")),
)


class FetchError(Exception):
  """A clip or shard could not be fetched; `reason` classifies it (see `TRANSIENT`)."""

  def __init__(self, reason: str, message: str):
    super().__init__(message)
    self.reason = reason

  @property
  def transient(self) -> bool:
    """Whether trying again later may succeed (network trouble, rate limits)."""
    return self.reason in TRANSIENT


@dataclasses.dataclass(frozen=True)
class Result:
  """The outcome of one clip or shard: status "ok", "skipped" or "failed", with its reason."""
  key: str
  status: str
  reason: str = ""
  message: str = ""
  attempts: int = 0
  clips: int = 0


Fetcher = Callable[[Clip, Path], None]
"""Writes the 10 s window of `clip` as an mp4 file at the given path, or raises `FetchError`."""


def classify(message: str) -> str:
  """A failure reason ("private", "unavailable", "blocked", "network", ...) from an error text."""
  text = message.lower()
  return next((reason for reason, needles in _REASONS if any(n in text for n in needles)),
              "error")


def youtube_fetcher(url_template: str = YOUTUBE_URL, ffmpeg: str | None = None) -> Fetcher:
  """A `Fetcher` using yt-dlp's Python API and imageio-ffmpeg's ffmpeg (no system install).

  `url_template` (with `{youtube_id}`) can point at another host, e.g. a local server in tests.
  """
  purpose = "downloading Kinetics clips from YouTube"
  yt_dlp = extras.require("yt_dlp", purpose)
  ffmpeg = ffmpeg or extras.require("imageio_ffmpeg", purpose).get_ffmpeg_exe()

  def fetch(clip: Clip, dest: Path) -> None:
    options = {
        "format": "bv*[ext=mp4]+ba[ext=m4a]/b[ext=mp4]/bv*+ba/b",
        "merge_output_format": "mp4",
        "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"}],
        "download_ranges": yt_dlp.utils.download_range_func(
            None, [(clip.time_start, clip.time_end)]),
        "force_keyframes_at_cuts": True,
        "ffmpeg_location": ffmpeg,
        "outtmpl": str(dest.with_suffix("")) + ".%(ext)s",
        "quiet": True, "no_warnings": True, "noprogress": True, "logger": _SilentLogger(),
        "retries": 1, "fragment_retries": 1, "socket_timeout": 30, "noplaylist": True,
    }
    # yt-dlp decides whether ffmpeg can cut sections before it reads `ffmpeg_location`; its own
    # command line sets this context variable (per thread) for that check, so we do the same.
    yt_dlp.postprocessor.ffmpeg.FFmpegPostProcessor._ffmpeg_location.set(ffmpeg)
    try:
      with yt_dlp.YoutubeDL(options) as ydl:
        ydl.download([url_template.format(youtube_id=clip.youtube_id)])
    except yt_dlp.utils.YoutubeDLError as e:
      raise FetchError(classify(str(e)), str(e)) from None
    if not dest.is_file():
      raise FetchError("error", f"yt-dlp produced no mp4 file for {clip.youtube_id}")

  return fetch


class _SilentLogger:
  """Swallows yt-dlp's console output; failures reach us as exceptions instead."""

  def debug(self, msg: str) -> None:
    """Ignored."""

  info = warning = error = debug


def download_clips(clips: Iterable[Clip], video_dir: str | Path, *,
                   fetcher: Fetcher | None = None, num_workers: int = 4, retries: int = 3,
                   backoff: float = 2.0, progress: bool = True,
                   offline: bool = False) -> list[Result]:
  """Fetches each clip into `video_dir/split/label/` (YouTube by default), skipping present ones;
  with `offline` (or `I3D_OFFLINE=1`) a clip that is not there is an error."""
  video_dir = Path(video_dir)
  check_pool(num_workers, retries)
  fetcher = fetcher or youtube_fetcher()
  clips = list(dict.fromkeys(clips))
  present = kinetics.local_clips(video_dir)
  todo = [c for c in clips if c.filename not in present]
  skipped = [Result(c.filename, "skipped", "present") for c in clips if c.filename in present]
  if todo and (offline or env.offline()):
    raise UserError(f"downloads are off (--offline or I3D_OFFLINE) and "
                    f"{text.count(len(todo), 'clip')} of the list are not in {video_dir}")
  jobs = [(c.filename, functools.partial(_fetch_clip, c, video_dir, fetcher)) for c in todo]
  return skipped + _run_pool(jobs, retries, backoff, video_dir, num_workers, progress, "clips")


def _fetch_clip(clip: Clip, video_dir: Path, fetcher: Fetcher) -> int:
  """Fetches one clip in a scratch folder, checks it decodes, then renames it into place."""
  scratch = inside(video_dir, ".partial", clip.filename.removesuffix(".mp4"))
  dest = inside(video_dir, clip.relpath)
  shutil.rmtree(scratch, ignore_errors=True)  # leftovers of a killed run
  scratch.mkdir(parents=True)
  try:
    fetcher(clip, scratch / "clip.mp4")
    if not is_readable(scratch / "clip.mp4"):
      raise FetchError("corrupt", f"the fetched file of {clip.filename} does not decode")
    _move_into_place(scratch / "clip.mp4", dest)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  return 1


def _move_into_place(source: Path, dest: Path) -> None:
  """Atomically publishes a finished file (same filesystem rename)."""
  dest.parent.mkdir(parents=True, exist_ok=True)
  os.replace(source, dest)


def check_pool(num_workers: int, retries: int) -> None:
  """A `UserError` for a worker count below 1 or a negative retry count."""
  if num_workers < 1 or retries < 0:
    raise UserError(f"need at least 1 worker and 0 or more retries; got {num_workers} workers "
                    f"and {retries} retries")


def _retrying(key: str, attempt: Callable[[], int], retries: int, backoff: float) -> Result:
  """Runs `attempt`, retrying transient `FetchError`s with exponential backoff."""
  tries = 0

  def one_try(n: int) -> int:
    nonlocal tries
    tries = n
    try:
      return attempt()
    except FetchError:
      raise
    except Exception as e:  # one bad clip must not stop the others; the report keeps the reason
      raise FetchError(classify(str(e)), f"{type(e).__name__}: {e}") from e

  try:
    clips = retry(one_try, retries=retries, backoff=backoff,
                  transient=lambda e: isinstance(e, FetchError) and e.transient)
  except FetchError as e:
    return Result(key, "failed", e.reason, str(e), attempts=tries)
  return Result(key, "ok", attempts=tries, clips=clips)


def _run_pool(jobs: Sequence[tuple[str, Callable[[], int]]], retries: int, backoff: float,
              video_dir: Path, num_workers: int, progress: bool, unit: str) -> list[Result]:
  """Runs each job (key, attempt) `_retrying` on `num_workers` threads, appending each result to
  the report."""
  results = []
  video_dir.mkdir(parents=True, exist_ok=True)
  with (concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool,
        progress_output.outer(len(jobs), "downloading", unit, show=progress) as bar,
        JsonLines(video_dir / REPORT_NAME) as report):
    futures = [pool.submit(_retrying, key, attempt, retries, backoff) for key, attempt in jobs]
    for future in concurrent.futures.as_completed(futures):
      result = future.result()
      report.append({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **dataclasses.asdict(result)})
      results.append(result)
      bar.update()
      bar.set_postfix(failed=sum(r.status == "failed" for r in results), refresh=False)
  return results


def read_report(video_dir: str | Path) -> dict[str, dict]:
  """The latest report record per key (clip filename or shard name)."""
  return {r["key"]: r for r in JsonLines(Path(video_dir) / REPORT_NAME).records if "key" in r}


def cvdf_urls(version: int | str, split: str,
              base_url: str = CVDF_BASE_URL) -> tuple[str, str]:
  """(shard list URL, annotations URL) of a split on the CVDF mirror or one with its layout."""
  version, split = kinetics.normalize_version(version), kinetics.normalize_split(split)
  folder, short = _CVDF_FOLDER[version], _CVDF_SPLIT[split]
  root = f"{base_url.rstrip('/')}/{folder}"
  return (f"{root}/{short}/k{folder}_{short}_path.txt",
          f"{root}/annotations/{_CVDF_ANNOTATIONS[version][split]}")


def annotations_cache(version: int | str) -> Path:
  """Where fetched annotation files are kept: `$I3D_KINETICS_DIR` or ~/.cache/i3d/kinetics."""
  return env.kinetics_dir() / _CVDF_FOLDER[kinetics.normalize_version(version)] / "annotations"


def fetch_annotations(version: int | str, split: str, dest_dir: str | Path | None = None,
                      base_url: str = CVDF_BASE_URL, offline: bool = False) -> Path:
  """The official annotation file of a split, downloaded once (into the cache by default); with
  `offline` (or `I3D_OFFLINE=1`) only a file already there is used."""
  url = cvdf_urls(version, split, base_url)[1]
  dest_dir = Path(dest_dir) if dest_dir is not None else annotations_cache(version)
  dest = dest_dir / posixpath.basename(url)
  if dest.exists():
    problem = cached_annotations_problem(dest, url)
    if problem and (offline or env.offline()):
      raise UserError(f"cached Kinetics-{version} {split} annotations {dest} {problem}; delete "
                      f"it and fetch again online, or download {url} by hand to {dest}")
    if not problem:
      return dest
    dest.unlink()
    _fetch_record(dest).unlink(missing_ok=True)
  try:
    _fetch_file(url, dest, offline=offline)
    write_json(_fetch_record(dest), {"url": url, "sha256": file_sha256(dest)})
    return dest
  except FetchError as e:
    online = "" if offline or env.offline() else "check the network and the mirror, or "
    raise UserError(f"cannot fetch the Kinetics-{version} {split} annotations: {e}; {online}"
                    f"download {url} by hand to {dest}") from None


def _fetch_record(path: Path) -> Path:
  """Where the record of a fetched annotation file is kept: `.NAME.fetched.json` beside it."""
  return path.with_name(f".{path.name}.fetched.json")


def cached_annotations_problem(path: Path, url: str) -> str | None:
  """Why the cached annotation file `path` cannot stand for `url`, or None when it can.

  A file this toolkit fetched has a record of its URL and SHA-256: it must match both (a file
  from another mirror, or one changed since, does not). A file placed by hand has no record and
  must hold at least `MIN_OFFICIAL_ROWS` rows, as every official file does.
  """
  if not path.is_file():
    return "is not a regular file"
  try:
    record = json.loads(_fetch_record(path).read_text(encoding="utf-8"))
  except FileNotFoundError:
    record = None
  except (OSError, ValueError):
    return "has a damaged fetch record"
  if record is not None:
    if not isinstance(record, dict):
      return "has a damaged fetch record"
    if record.get("url") != url:
      return f"was fetched from {record.get('url')!r}, not {url}"
    if record.get("sha256") != file_sha256(path):
      return "changed since it was fetched (its SHA-256 differs)"
    return None
  with open(path, "rb") as f:
    rows = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) - 1
  if rows < MIN_OFFICIAL_ROWS:
    return (f"holds {max(rows, 0)} rows, fewer than any official annotation file "
            f"(at least {MIN_OFFICIAL_ROWS:,})")
  return None


def _fetch_file(url: str, dest: Path, retries: int = 3, offline: bool = False) -> Path:
  """A file fetched once with `i3d.download` (resumable, atomic); `FetchError` on failure."""
  try:
    return download(url, dest, progress=False, retries=retries, offline=offline)
  except DownloadError as e:
    status = getattr(e, "status", None)
    reason = "unavailable" if status in (401, 403, 404, 410) else "network"
    raise FetchError(reason, str(e)) from None


def download_split(version: int | str, split: str, video_dir: str | Path, *,
                   annotations: str | Path | None = None, base_url: str = CVDF_BASE_URL,
                   num_workers: int = 4, retries: int = 3, progress: bool = True,
                   offline: bool = False) -> list[Result]:
  """Fetches a whole split's `.tar.gz` shards from CVDF and extracts them to `split/label/`."""
  video_dir = Path(video_dir)
  check_pool(num_workers, retries)
  split = kinetics.normalize_split(split)
  list_url, _ = cvdf_urls(version, split, base_url)
  annotations = Path(annotations or fetch_annotations(version, split, base_url=base_url,
                                                     offline=offline))
  try:
    shard_list = _fetch_file(list_url, video_dir / ".shards" / posixpath.basename(list_url),
                             offline=offline)
  except FetchError as e:
    raise UserError(f"cannot fetch the Kinetics-{version} {split} shard list {list_url} ({e}); "
                    f"check --base_url and the network") from None
  clips = {c.filename: c for c in kinetics.read_annotations(annotations, version).clips
           if c.split == split}
  urls = [urllib.parse.urljoin(list_url, name) for name in _shard_names(shard_list)]
  done = read_report(video_dir)
  todo = [u for u in urls if done.get(_shard_key(u), {}).get("status") != "ok"]
  skipped = [Result(_shard_key(u), "skipped", "done") for u in urls if u not in todo]
  if clips and clips.keys() <= kinetics.local_clips(video_dir).keys():
    return skipped + [Result(_shard_key(u), "skipped", "all clips present") for u in todo]
  jobs = [(_shard_key(u), functools.partial(_fetch_shard, u, video_dir, split, clips, retries))
          for u in todo]  # no retries of a shard: `download` retries transfers itself
  return skipped + _run_pool(jobs, 0, 0.0, video_dir, num_workers, progress, "shards")


def _shard_names(shard_list: Path) -> list[str]:
  """The shard file names of a downloaded shard list (one URL or name per line), validated."""
  try:
    lines = shard_list.read_text(encoding="utf-8").splitlines()
  except (OSError, UnicodeDecodeError) as e:
    raise UserError(f"shard list {shard_list} is unreadable ({e}); delete it and run "
                    f"again") from None
  entries = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
  for number, line in entries:
    if not _SHARD_NAME.match(posixpath.basename(line)):
      raise UserError(f"shard list {shard_list} line {number}: {line[:80]!r} does not "
                      f"end in a plain NAME.tar.gz; check --base_url serves a Kinetics mirror")
  return [posixpath.basename(line) for _, line in entries]


def _shard_key(url: str) -> str:
  """Report key of a shard, e.g. "600/val/part_0.tar.gz" (shard names repeat across splits)."""
  return "/".join(urllib.parse.urlparse(url).path.split("/")[-3:])


def _fetch_shard(url: str, video_dir: Path, split: str, clips: dict[str, Clip],
                 retries: int) -> int:
  """Downloads one shard, extracts its clips into place and deletes it; returns clips written."""
  archive = _fetch_file(url, inside(video_dir, ".shards", _shard_key(url)), retries)
  try:
    count, undecodable = extract_shard(archive, video_dir, split, clips)
  except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
    archive.unlink(missing_ok=True)  # fetch it afresh next run
    raise FetchError("corrupt", f"corrupt shard {archive.name}: {e}") from None
  archive.unlink()
  if undecodable:
    raise FetchError("corrupt", f"shard {archive.name}: {len(undecodable)} clips do not decode "
                                f"and were not kept ({', '.join(undecodable[:5])}); the other "
                                f"{count} were published")
  return count


def extract_shard(archive: Path, video_dir: Path, split: str,
                  clips: dict[str, Clip]) -> tuple[int, list[str]]:
  """Extracts the mp4 members of a flat shard to `split/label/filename`.

  Members are placed by file name using the annotations (unknown ones go to `split/`). They are
  unpacked into a scratch folder and published only once the whole archive has read cleanly, so
  a corrupt or truncated shard leaves nothing behind; clips already present are left alone. A
  member over `$I3D_MAX_CLIP_BYTES` or a repeated member name is a `tarfile.TarError`; a clip
  that does not decode is not published.

  Returns:
    (clips published, names of the members that did not decode).
  """
  scratch = archive.with_name(archive.name + ".d")
  shutil.rmtree(scratch, ignore_errors=True)
  scratch.mkdir(parents=True)
  limit = env.limit("I3D_MAX_CLIP_BYTES")
  try:
    with tarfile.open(archive, "r:gz") as tar:
      for member in tar:
        name = posixpath.basename(member.name)
        if not member.isfile() or kinetics.parse_filename(name) is None:
          continue
        if member.size > limit:
          raise tarfile.TarError(f"member {member.name} is {member.size} bytes, over the "
                                 f"{limit}-byte limit ($I3D_MAX_CLIP_BYTES)")
        if (scratch / name).exists():
          raise tarfile.TarError(f"member name {name} appears twice")
        source = tar.extractfile(member)
        with source, inside(scratch, name).open("wb") as target:  # type: ignore[union-attr]
          shutil.copyfileobj(source, target)  # type: ignore[arg-type]
    paths = sorted(scratch.iterdir())
    undecodable = [p.name for p in paths if not is_readable(p)]
    published = sum(_publish(p, video_dir, split, clips) for p in paths
                    if p.name not in undecodable)
    return published, undecodable
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def _publish(path: Path, video_dir: Path, split: str, clips: dict[str, Clip]) -> bool:
  """Moves an extracted clip to its place unless one is already there."""
  clip = clips.get(path.name)
  dest = inside(video_dir, clip.relpath if clip else Path(split, path.name))
  if dest.exists():
    return False
  _move_into_place(path, dest)
  return True

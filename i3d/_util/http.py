"""Robust file downloads: resumable, retried, verified, atomic and safe across processes.

A download goes to `DEST.part` (resumed with an HTTP Range request after an interruption) and is
renamed to `DEST` only once complete and verified, so a file at `DEST` is never a half file.
A lock file beside it lets concurrent processes share the work instead of corrupting it; it is
removed when the download ends. With `offline=True` (a command's `--offline`) or `I3D_OFFLINE=1`
nothing is fetched: a missing file is an error at once. Folders created for a download that
fails are removed again, so a failed attempt leaves no empty folder behind.
"""

import hashlib
import os
from pathlib import Path
from typing import Optional

import requests

from i3d._util import env
from i3d._util import progress as progress_output
from i3d._util.files import making
from i3d._util.retry import retry
from i3d.errors import DownloadError

CHUNK_BYTES = 1 << 16
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class _Transient(Exception):
  """A failure worth retrying: network trouble, a 5xx, a body cut short."""


def git_blob_sha1(path: Path) -> str:
  """Git's object id of a file: SHA-1 of `blob <size>\\0<content>` (how GitHub names files)."""
  header = b"blob %d\0" % os.path.getsize(path)
  with open(path, "rb") as f:
    return hashlib.file_digest(f, lambda: hashlib.sha1(header)).hexdigest()


def download(url: str, dest: Path, *, git_sha1: Optional[str] = None, progress: bool = True,
             retries: int = 3, timeout: float = 60.0, backoff: float = 1.0,
             offline: bool = False) -> Path:
  """Fetch `url` to `dest` unless it is already there; verify it against `git_sha1` if given.

  A body over `$I3D_MAX_DOWNLOAD_BYTES` is refused (and deleted) whether or not a hash is given.
  """
  dest = Path(dest)
  if dest.exists():
    return dest
  if offline or env.offline():
    raise DownloadError(f"downloads are off (--offline or I3D_OFFLINE) and {dest} is missing")
  with making(dest):
    if dest.exists():  # another process fetched it while we waited for the lock
      return dest
    part = dest.with_name(dest.name + ".part")
    try:
      retry(lambda _: _fetch(url, part, timeout=timeout, progress=progress, label=dest.name),
            retries=retries, backoff=backoff, transient=lambda e: isinstance(e, _Transient))
    except _Transient as e:
      if part.exists() and not part.stat().st_size:
        part.unlink()
      kept = f" (the partial file {part} is kept and resumed)" if part.exists() else ""
      raise DownloadError(f"could not download {url} after {retries + 1} tries: {e}; check the "
                          f"network or the URL, then run again{kept}") from None
    if git_sha1 is not None and (actual := git_blob_sha1(part)) != git_sha1:
      part.unlink()
      raise DownloadError(f"{url} failed verification: git SHA-1 {actual}, expected {git_sha1}; "
                          f"the file was deleted. Run again, or check the mirror serves the "
                          f"released file")
    os.replace(part, dest)
  return dest


def _fetch(url: str, part: Path, *, timeout: float, progress: bool, label: str) -> None:
  """Download `url` into `part`, continuing from its current size when the server allows."""
  have = part.stat().st_size if part.exists() else 0
  headers = {"Range": f"bytes={have}-"} if have else {}
  try:
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
      status = response.status_code  # retried when worth it (`_Transient`), else refused
      if status == 416 and have:  # what we hold is not a prefix of the file
        part.unlink()
        raise _Transient("stale partial file discarded")
      if status in TRANSIENT_STATUS:
        raise _Transient(f"HTTP {status} from {url}")
      if status not in (200, 206):
        raise DownloadError(f"HTTP {status} ({response.reason}) for {url}: the file is not "
                            f"there; check the URL or mirror", status=status)
      if status != 206:
        have = 0
      length = response.headers.get("Content-Length")  # None when the server does not say
      total = None if length is None else have + int(length)  # the full file size
      limit = env.limit("I3D_MAX_DOWNLOAD_BYTES")
      if total is not None and total > limit:
        raise _too_big(url, part, f"{total} bytes")
      with open(part, "ab" if have else "wb") as f, progress_output.bar(
          total, label, "B", show=progress, initial=have, unit_scale=True,
          unit_divisor=1024) as bar:
        for chunk in response.iter_content(CHUNK_BYTES):
          have += len(chunk)
          if have > limit:
            raise _too_big(url, part, f"more than {limit} bytes")
          f.write(chunk)
          bar.update(len(chunk))
  except (requests.exceptions.TooManyRedirects, requests.exceptions.InvalidSchema,
          requests.exceptions.MissingSchema, requests.exceptions.InvalidURL) as e:
    raise DownloadError(f"cannot download {url}: {type(e).__name__} ({e}); use an http(s) URL "
                        f"of a server that serves the file") from None
  except (requests.ConnectionError, requests.Timeout,
          requests.exceptions.ChunkedEncodingError) as e:
    raise _Transient(f"network error ({_root_cause(e)})") from None
  got = part.stat().st_size
  if total is not None and got != total:
    raise _Transient(f"transfer cut short at {got} of {total} bytes")


def _too_big(url: str, part: Path, size: str) -> DownloadError:
  """The error for a body over the download limit; the partial file is deleted first."""
  part.unlink(missing_ok=True)
  return DownloadError(f"{url} sends {size}, over the {env.limit('I3D_MAX_DOWNLOAD_BYTES')}-byte "
                       f"limit; raise $I3D_MAX_DOWNLOAD_BYTES if the file is really that big")


def _root_cause(error: BaseException) -> str:
  """The innermost reason of a chained network error, e.g. `[Errno 111] Connection refused`."""
  while error.__context__ is not None or error.__cause__ is not None:
    error = error.__cause__ or error.__context__  # type: ignore[assignment]
  return str(error) or type(error).__name__

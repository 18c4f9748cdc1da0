"""Small generated Kinetics clips shared by the Kinetics tests."""

import collections
import http.server
import io
import re
import tarfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (32, 24)) -> Path:
  """Writes a tiny decodable mp4 (MPEG-4 part 2) whose frames brighten over time."""
  path.parent.mkdir(parents=True, exist_ok=True)
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
  for i in range(frames):
    writer.write(np.full((size[1], size[0], 3), (i * 20) % 256, np.uint8))
  writer.release()
  return path


class _Handler(http.server.BaseHTTPRequestHandler):
  """GET with Range support, a request log and injected faults (see `MirrorServer`)."""

  def do_GET(self) -> None:
    mirror: MirrorServer = self.server.mirror
    data = mirror.files.get(self.path)
    match = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
    start = int(match[1]) if match else 0
    with mirror.lock:
      mirror.requests.append((self.path, start))
    if data is None:
      self.send_error(404)
      return
    with mirror.lock:
      cut = self.path in mirror.cut
      mirror.cut.discard(self.path)
      failing = self.path in mirror.fail
      mirror.fail.discard(self.path)
    if failing:
      self.send_error(503)
      return
    body = data[start:]
    self.send_response(206 if match else 200)
    self.send_header("Content-Length", str(len(body)))
    if match:
      self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
    self.end_headers()
    self._send(body[:len(body) // 2] if cut else body, mirror)
    self.close_connection = cut

  def _send(self, body: bytes, mirror: "MirrorServer") -> None:
    """Writes the body in small chunks, `mirror.delay` seconds apart (each counted before it is
    written, so a client that has read everything never sees a count short of it)."""
    for i in range(0, len(body), mirror.chunk):
      with mirror.lock:
        mirror.bytes_sent[self.path] += len(body[i:i + mirror.chunk])
      self.wfile.write(body[i:i + mirror.chunk])
      self.wfile.flush()
      time.sleep(mirror.delay)

  def log_message(self, *args) -> None:
    """Quiet."""


class MirrorServer:
  """An HTTP server on 127.0.0.1 serving `files` (URL path -> bytes).

  Paths in `cut` send only half their body the first time, paths in `fail` answer 503 the first
  time; every request is logged with its Range start in `requests`, and `bytes_sent` counts
  body bytes per path.
  """

  def __init__(self, files: dict[str, bytes], cut: Iterable[str] = (), delay: float = 0.0,
               chunk: int = 1 << 16, fail: Iterable[str] = ()):
    self.files, self.cut, self.delay, self.chunk = files, set(cut), delay, chunk
    self.fail = set(fail)
    self.lock = threading.Lock()
    self.requests: list[tuple[str, int]] = []
    self.bytes_sent: collections.Counter = collections.Counter()
    self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    self._server.daemon_threads = True
    self._server.mirror = self
    self.url = f"http://127.0.0.1:{self._server.server_port}"

  def __enter__(self) -> "MirrorServer":
    threading.Thread(target=self._server.serve_forever, daemon=True).start()
    return self

  def __exit__(self, *exc) -> None:
    self._server.shutdown()
    self._server.server_close()

  def gets(self, path: str) -> list[int]:
    """Range starts of the requests for `path` so far."""
    with self.lock:
      return [start for p, start in self.requests if p == path]


def tar_gz(members: dict[str, bytes]) -> bytes:
  """A gzipped tar holding `members` (name -> content), as a CVDF shard."""
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
    for name, content in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(content)
      tar.addfile(info, io.BytesIO(content))
  return buffer.getvalue()

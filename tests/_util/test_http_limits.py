"""Downloads from a hostile or broken server: endless bodies, huge promises, redirect loops and
URLs that are not HTTP are refused with one line, and nothing is left behind (issue 15, item 3)."""

import http.server
import threading

import pytest

from i3d._util.http import download
from i3d.errors import DownloadError, UserError


class _Hostile(http.server.BaseHTTPRequestHandler):
  """/endless: a body with no length that never ends; /huge: promises 10 GB; /loop: redirects
  to itself."""

  def do_GET(self) -> None:
    if self.path == "/loop":
      self.send_response(302)
      self.send_header("Location", "/loop")
      self.end_headers()
      return
    self.send_response(200)
    if self.path == "/huge":
      self.send_header("Content-Length", str(10 << 30))
    self.end_headers()
    try:
      for _ in range(1024):  # 64 MB, far beyond the limit below; stops if the client hangs up
        self.wfile.write(b"\0" * (1 << 16))
    except (BrokenPipeError, ConnectionResetError):
      pass

  def log_message(self, *args) -> None:
    """Quiet."""


@pytest.fixture
def hostile():
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
  server.daemon_threads = True
  threading.Thread(target=server.serve_forever, daemon=True).start()
  yield f"http://127.0.0.1:{server.server_port}"
  server.shutdown()
  server.server_close()


@pytest.mark.parametrize("path", ["/endless", "/huge"])
def test_bodies_over_the_limit_are_refused_and_deleted(hostile, tmp_path, monkeypatch, path):
  monkeypatch.setenv("I3D_MAX_DOWNLOAD_BYTES", str(1 << 20))
  dest = tmp_path / "file.bin"
  with pytest.raises(DownloadError, match=r"over the 1048576-byte limit; raise "
                                          r"\$I3D_MAX_DOWNLOAD_BYTES"):
    download(hostile + path, dest, progress=False, retries=0)
  assert not dest.exists() and not dest.with_name("file.bin.part").exists()


def test_the_limit_has_a_default_and_a_bad_override_is_one_line(monkeypatch, tmp_path):
  from i3d._util import env
  assert env.limit("I3D_MAX_DOWNLOAD_BYTES") == 16 << 30
  monkeypatch.setenv("I3D_MAX_DOWNLOAD_BYTES", "lots")
  with pytest.raises(UserError, match=r"I3D_MAX_DOWNLOAD_BYTES='lots' is not a positive"):
    env.limit("I3D_MAX_DOWNLOAD_BYTES")


def test_redirect_loop_is_a_one_line_download_error(hostile, tmp_path):
  with pytest.raises(DownloadError, match="TooManyRedirects") as error:
    download(hostile + "/loop", tmp_path / "x", progress=False, retries=0)
  assert "\n" not in str(error.value)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "no-scheme"])
def test_urls_that_are_not_http_are_one_line_download_errors(tmp_path, url):
  with pytest.raises(DownloadError, match="use an http"):
    download(url, tmp_path / "x", progress=False, retries=0)


def test_an_unwritable_destination_is_a_one_line_user_error(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(UserError, match="cannot write to"):
    download("http://127.0.0.1:9/x", tmp_path / "file" / "x", progress=False, retries=0)

"""Downloads against a local HTTP server: resume, retry, verification, 404, concurrency, offline."""

import dataclasses
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import i3d
from i3d._util.http import download, git_blob_sha1
from i3d.model import registry
from i3d.model.registry import DATA_FILE, INDEX_FILE
from tests.support.servers import MirrorServer

PAYLOAD = np.random.default_rng(0).bytes(300_000)
PAYLOAD_SHA1 = hashlib.sha1(b"blob %d\0" % len(PAYLOAD) + PAYLOAD).hexdigest()


def test_git_blob_sha1_matches_git(tmp_path):
  path = tmp_path / "f"
  path.write_bytes(b"hello\n")
  assert git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object


def test_download_verifies_and_leaves_no_partial_file(tmp_path):
  with MirrorServer({"/f": PAYLOAD}) as server:
    dest = download(server.url + "/f", tmp_path / "f", git_sha1=PAYLOAD_SHA1, progress=False)
    again = download(server.url + "/f", tmp_path / "f", git_sha1=PAYLOAD_SHA1, progress=False)
    assert server.gets("/f") == [0]  # the second call found the file and fetched nothing
  assert dest == again and dest.read_bytes() == PAYLOAD
  assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # no lock file left either


def test_interrupted_transfer_resumes_with_range(tmp_path):
  with MirrorServer({"/f": PAYLOAD}, cut=["/f"]) as server:
    download(server.url + "/f", tmp_path / "f", git_sha1=PAYLOAD_SHA1, progress=False,
             backoff=0.01)
    starts = server.gets("/f")
    sent = server.bytes_sent["/f"]
  half = len(PAYLOAD) // 2
  assert starts[0] == 0 and 0 < starts[1] <= half  # resumed from what had been written
  assert sent - half == len(PAYLOAD) - starts[1]  # the second request sent only the rest
  assert (tmp_path / "f").read_bytes() == PAYLOAD


def test_server_error_is_retried(tmp_path):
  with MirrorServer({"/f": PAYLOAD}, fail=["/f"]) as server:
    download(server.url + "/f", tmp_path / "f", progress=False, backoff=0.01)
    assert len(server.gets("/f")) == 2
  assert (tmp_path / "f").read_bytes() == PAYLOAD


def test_404_is_final_and_named(tmp_path):
  with MirrorServer({}) as server:
    with pytest.raises(i3d.DownloadError, match="HTTP 404") as error:
      download(server.url + "/missing", tmp_path / "f", progress=False, backoff=0.01)
    assert len(server.gets("/missing")) == 1  # not retried
  assert error.value.status == 404 and not (tmp_path / "f").exists()


def test_hash_mismatch_deletes_and_says_so(tmp_path):
  with MirrorServer({"/f": PAYLOAD[:-1] + b"x"}) as server:
    with pytest.raises(i3d.DownloadError, match="failed verification.*deleted"):
      download(server.url + "/f", tmp_path / "f", git_sha1=PAYLOAD_SHA1, progress=False)
  assert list(tmp_path.iterdir()) == []


def test_refused_connection_says_what_is_true_and_leaves_nothing(tmp_path):
  with MirrorServer({}) as server:
    dead = server.url  # closed below, so connections are refused
  with pytest.raises(i3d.DownloadError) as error:
    download(dead + "/f", tmp_path / "f", progress=False, retries=1, backoff=0.01)
  message = str(error.value)
  assert message.startswith(f"could not download {dead}/f after 2 tries: network error (")
  assert "Connection refused" in message and ".part" not in message  # no partial file exists
  assert list(tmp_path.iterdir()) == []  # neither an empty .part nor a .lock


def test_cut_transfer_says_the_partial_file_is_kept(tmp_path):
  with MirrorServer({"/f": PAYLOAD}, cut=["/f"]) as server:
    with pytest.raises(i3d.DownloadError, match=r"partial file .*f\.part is kept and resumed"):
      download(server.url + "/f", tmp_path / "f", progress=False, retries=0)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["f.part"]


def test_offline_fetches_nothing(tmp_path, monkeypatch):
  monkeypatch.setenv("I3D_OFFLINE", "1")
  with MirrorServer({"/f": PAYLOAD}) as server:
    with pytest.raises(i3d.DownloadError, match=f"downloads are off .* and {tmp_path / 'f'} is "
                                                f"missing"):
      download(server.url + "/f", tmp_path / "f", progress=False)
    assert server.gets("/f") == []
  assert list(tmp_path.iterdir()) == []


def test_two_processes_download_once(tmp_path):
  code = ("import sys; from i3d._util.http import download; "
          "download(sys.argv[1], sys.argv[2], git_sha1=sys.argv[3], progress=False)")
  with MirrorServer({"/f": PAYLOAD}, delay=0.02, chunk=20_000) as server:
    procs = [subprocess.Popen([sys.executable, "-c", code, server.url + "/f",
                               str(tmp_path / "f"), PAYLOAD_SHA1]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert server.gets("/f") == [0]
  assert (tmp_path / "f").read_bytes() == PAYLOAD


def _fake_release(monkeypatch, checkpoint_dir, name):
  """Serve a format-exact checkpoint as if it were the release, with matching hashes."""
  files = {f: (checkpoint_dir / name / f).read_bytes() for f in (INDEX_FILE, DATA_FILE)}
  hashes = dict(registry.CHECKPOINTS[name].sha1)
  hashes.update({f: hashlib.sha1(b"blob %d\0" % len(b) + b).hexdigest() for f, b in files.items()})
  info = dataclasses.replace(registry.CHECKPOINTS[name], sha1=hashes)
  monkeypatch.setitem(registry.CHECKPOINTS, name, info)
  return {f"/{name}/{f}": b for f, b in files.items()}


def test_first_use_downloads_into_checkpoint_dir(monkeypatch, checkpoint_dir, tmp_path):
  files = _fake_release(monkeypatch, checkpoint_dir, "rgb_scratch_kin600")
  with MirrorServer(files) as server:
    monkeypatch.setenv("I3D_CHECKPOINT_BASE_URL", server.url)
    model = i3d.InceptionI3d(600)
    prefix = i3d.load_checkpoint(model, "rgb_scratch_kin600", checkpoint_dir=tmp_path)
  assert prefix == tmp_path / "rgb_scratch_kin600" / "model.ckpt"
  for path, content in files.items():
    assert (tmp_path / path.lstrip("/")).read_bytes() == content


def test_download_command_uses_env_dir_and_base_url(monkeypatch, checkpoint_dir, tmp_path):
  files = _fake_release(monkeypatch, checkpoint_dir, "flow_scratch")
  with MirrorServer(files) as server:
    monkeypatch.setenv("I3D_CHECKPOINT_DIR", str(tmp_path))
    prefix = i3d.fetch_checkpoint("flow_scratch", base_url=server.url, progress=False)
  assert prefix == tmp_path / "flow_scratch" / "model.ckpt"
  assert (tmp_path / "flow_scratch" / DATA_FILE).exists()


def test_offline_error_names_files_urls_and_manual_steps(tmp_path):
  with MirrorServer({}) as server:
    dead = server.url  # closed below, so connections are refused
  with pytest.raises(i3d.DownloadError) as error:
    i3d.fetch_checkpoint("rgb_imagenet", tmp_path, base_url=dead, progress=False, retries=0)
  message = str(error.value)
  assert "network error" in message and "by hand" in message
  assert f"{dead}/rgb_imagenet/{DATA_FILE}" in message
  assert f"{dead}/rgb_imagenet/{INDEX_FILE}" in message
  assert str(tmp_path / "rgb_imagenet") in message
  assert not os.path.exists(tmp_path / "rgb_imagenet" / INDEX_FILE)

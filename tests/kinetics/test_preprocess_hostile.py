"""Hostile conditions for `i3d preprocess` of a split: a full disk, names that leave the folder."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from i3d import kinetics
from i3d._util import storage
from i3d.errors import UserError
from i3d.kinetics import preprocess, recordset
from i3d.model.labels import load_label_map
from i3d.testing import write_validation_set
from tests.support import procs
from tests.support.cli import one_line_error

LABELS = load_label_map(400)
# RGB only: TV-L1 would take most of the test's time.
RGB = preprocess.PreprocessConfig(streams=("rgb",), num_shards=2)


@pytest.fixture(scope="module")
def small_split(tmp_path_factory):
  """(annotations, video dir, clips) of four tiny generated clips."""
  root = tmp_path_factory.mktemp("small_split")
  annotations, video_dir = write_validation_set(
      root, [(f"gen_clip_0{i}", LABELS[i], "generated") for i in range(4)], seconds=0.16,
      size=(48, 32))
  return annotations, video_dir, kinetics.read_annotations(annotations).clips


def test_a_full_disk_while_staging_is_retried_and_never_seals_a_shard(small_split, tmp_path,
                                                                       monkeypatch):
  _, video_dir, clips = small_split
  out = tmp_path / "records"
  write_bytes = storage.write_bytes

  def full_for_clip_1(path, data):
    if "gen_clip_01" in str(path):
      raise OSError(errno.ENOSPC, "No space left on device", str(path))
    write_bytes(path, data)

  monkeypatch.setattr(storage, "write_bytes", full_for_clip_1)
  summary = preprocess.preprocess(clips, video_dir, out, RGB, progress=False)
  assert (summary["shards"], summary["clips"], summary["failed"], summary["retry"]) == (1, 2, 0, 1)
  assert summary["retry_reason"].startswith(
      "gen_clip_01_000000_000010.mp4: OSError: [Errno 28] No space left on device")
  # The shard of the clip that hit the full disk is not sealed, and the clip is no failure.
  assert [p.name for p in out.glob("*.tfrecord")] == ["clips-00001-of-00002.tfrecord"]
  assert not (out / preprocess.FAILURES_FILE).exists() or not (
      out / preprocess.FAILURES_FILE).read_text().strip()

  monkeypatch.setattr(storage, "write_bytes", write_bytes)
  summary = preprocess.preprocess(clips, video_dir, out, RGB, progress=False)
  assert (summary["shards"], summary["clips"], summary["failed"], summary["retry"]) == (2, 4, 0, 0)
  manifest = [json.loads(line) for line in (out / preprocess.MANIFEST_FILE).read_text()
              .splitlines()]
  assert sorted(c["id"] for m in manifest for c in m["clips"]) == [
      f"gen_clip_0{i}_000000_000010" for i in range(4)]


@pytest.mark.parametrize("name", ["../../ESCAPED", "", ".hidden", "a\\b"])
def test_a_shard_name_that_leaves_the_folder_or_is_unreadable_is_refused(tmp_path, capsys, name):
  err = one_line_error(capsys, "preprocess", "--annotations", tmp_path / "a.csv", "--video_dir",
                       tmp_path, "--output_dir", tmp_path / "out", "--name", name)
  assert f"shard name {name!r} is not a safe file name prefix" in err
  assert not list(tmp_path.rglob("*.tfrecord"))


LAUNCHER = """
import sys, time
from i3d.inputs import records
from i3d.kinetics import preprocess
job = preprocess.EncodeJob("k", sys.argv[1], records.ClipInfo("k"), sys.argv[2],
                           preprocess.PreprocessConfig(streams=("rgb",)))
for result in preprocess.pool_encoder(2)([job]):
  print("encoded", *result[2:], sep="\t", flush=True)
  time.sleep(600)
"""


def children(pid: int) -> list[int]:
  return procs.live("parent", pid)


def cmdline(pid: int) -> bytes:
  try:
    return Path(f"/proc/{pid}/cmdline").read_bytes()
  except OSError:
    return b""


def alive(pid: int) -> bool:
  try:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False


def test_workers_die_with_a_killed_launcher(tmp_path):
  launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path / "none.mp4"),
                               str(tmp_path / "k.pb")], stdout=subprocess.PIPE, text=True)
  workers: list[int] = []
  try:
    assert launcher.stdout.readline().startswith("encoded\t")
    workers = children(launcher.pid)
    assert workers  # the pool's worker (and multiprocessing's resource tracker)
    launcher.kill()
    launcher.wait()
    deadline = time.monotonic() + 20
    while any(map(alive, workers)) and time.monotonic() < deadline:
      time.sleep(0.2)
    assert not [w for w in workers if alive(w)]
  finally:
    launcher.kill()
    for worker in filter(alive, workers):
      os.kill(worker, signal.SIGKILL)


CLIP = {"id": "a_000000_000010", "youtube_id": "a", "time_start": 0, "time_end": 10,
        "split": "validation", "label": "x"}


@pytest.mark.parametrize("settings", ["[]", "{}", '{"records": 3}'])
def test_a_records_json_of_the_wrong_shape_is_one_line(tmp_path, settings):
  (tmp_path / preprocess.SETTINGS_FILE).write_text(settings)
  with pytest.raises(UserError, match="records.json: not the settings of a records folder"):
    recordset.read_manifest(tmp_path)


@pytest.mark.parametrize("line, problem", [
    ({"clips": [CLIP]}, "None is not a shard of the folder"),
    ({"shard": "c-00000-of-00001.tfrecord", "clips": [{**CLIP, "time_start": 1.5}]},
     r"line 1 is damaged \(ValueError: clip times \(1.5, 10\) are not whole seconds\)"),
    ({"shard": "c-00000-of-00001.tfrecord", "clips": [{"id": "a"}]}, "line 1 is damaged"),
    ({"shard": "c-00000-of-00001.tfrecord", "clips": 7}, "line 1 is damaged"),
])
def test_a_damaged_manifest_line_is_one_line(line, problem):
  with pytest.raises(UserError, match=problem):
    recordset.manifest_clips([line])


def test_a_clip_whose_worker_died_is_retried_not_failed(tmp_path):
  launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path / "none.mp4"),
                               str(tmp_path / "k.pb")], stdout=subprocess.PIPE, text=True)
  try:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
      # the pool's worker once it runs spawn's code: a child caught between its fork and its
      # exec still shows the launcher's command line, as multiprocessing's resource tracker does
      workers = [w for w in children(launcher.pid) if b"spawn_main" in cmdline(w)]
      if workers:
        break
      time.sleep(0.05)
    os.kill(workers[0], signal.SIGKILL)  # while it starts: before it could take the job
    _, error, retry = launcher.stdout.readline().rstrip("\n").split("\t")
    assert retry == "True" and error.startswith("its worker process died")
  finally:
    launcher.kill()
    launcher.wait()

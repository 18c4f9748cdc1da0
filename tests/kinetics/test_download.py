"""Kinetics downloads without the internet: a local mirror, injected fetchers, kills and resumes."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import pytest

from i3d import kinetics
from i3d.errors import UserError
from i3d.inputs import decode
from i3d.kinetics import Clip
from i3d.kinetics import download as kinetics_download
from i3d.kinetics.download import FetchError, download_clips, download_split, read_report
from tests.support.clips import REPO
from tests.support.servers import MirrorServer, tar_gz, write_video

CLIPS = [Clip(f"vid{i}-abc_d", 10 * i, 10 * i + 10, "validation",
              ("abseiling", "backflip (human)")[i % 2]) for i in range(7)]
DELIVERED, LOST = CLIPS[:6], CLIPS[6]  # LOST is in the corrupt shard
STRAY = Clip("notannotated", 0, 10, "validation", None)


@pytest.fixture(autouse=True)
def annotation_cache(tmp_path, monkeypatch):
  """Keeps fetched annotation files out of the home directory."""
  monkeypatch.setenv("I3D_KINETICS_DIR", str(tmp_path / "cache"))


def video_bytes(tmp_path: Path, frames: int) -> bytes:
  """A small decodable mp4 with `frames` frames."""
  return write_video(tmp_path / "gen" / f"{frames}.mp4", frames=frames).read_bytes()


def cvdf_mirror(tmp_path: Path, padding: int = 0) -> tuple[dict[str, bytes], dict[str, bytes]]:
  """Files of a CVDF-layout mirror of Kinetics-600 validation, and each clip's content.

  Shards: part_0 (clips 0, 1, one under a folder), part_1 (clips 2, 3 and a clip missing from
  the annotations), part_2 (clip 6, corrupt: `fixed_part_2` gives it intact), part_3 (clips
  4, 5). `padding` random bytes per shard make transfers long enough to interrupt.
  """
  content = {c.filename: video_bytes(tmp_path, 5 + i) for i, c in enumerate(CLIPS + [STRAY])}
  pad = {"padding.bin": os.urandom(padding)} if padding else {}
  names = [c.filename for c in CLIPS]
  shards = {
      "part_0.tar.gz": tar_gz({names[0]: content[names[0]],
                               f"k600/val/{names[1]}": content[names[1]], **pad}),
      "part_1.tar.gz": tar_gz({n: content[n] for n in (names[2], names[3], STRAY.filename)}
                              | pad),
      "part_2.tar.gz": fixed_part_2(content)[:-40],
      "part_3.tar.gz": tar_gz({n: content[n] for n in names[4:6]} | pad),
  }
  listing = "".join(f"https://s3.amazonaws.com/kinetics/600/val/{n}\n" for n in shards)
  annotations = "label,youtube_id,time_start,time_end,split\n" + "".join(
      f'"{c.label}",{c.youtube_id},{c.time_start},{c.time_end},val\n' for c in CLIPS)
  files = {f"/600/val/{n}": data for n, data in shards.items()}
  files["/600/val/k600_val_path.txt"] = listing.encode()
  files["/600/annotations/val.txt"] = annotations.encode()
  return files, content


def fixed_part_2(content: dict[str, bytes]) -> bytes:
  """The intact version of the corrupt shard."""
  return tar_gz({LOST.filename: content[LOST.filename]})


def assert_clips_in_place(video_dir: Path, content: dict[str, bytes], clips: list[Clip]) -> None:
  """Every clip sits at `split/label/filename` with exactly the served bytes."""
  for clip in clips:
    assert (video_dir / clip.relpath).read_bytes() == content[clip.filename], clip
  leftovers = [p for p in video_dir.rglob("*") if p.is_file() and (
      p.name.endswith(".part") or p.name.endswith(".tar.gz") or ".partial" in p.parts)]
  assert leftovers == []


def test_cvdf_urls_follow_the_mirror_layout():
  assert kinetics_download.cvdf_urls(400, "validation") == (
      "https://s3.amazonaws.com/kinetics/400/val/k400_val_path.txt",
      "https://s3.amazonaws.com/kinetics/400/annotations/val.csv")
  assert kinetics_download.cvdf_urls("700-2020", "train", "http://m/k/") == (
      "http://m/k/700_2020/train/k700_2020_train_path.txt",
      "http://m/k/700_2020/annotations/train.csv")
  assert kinetics_download.cvdf_urls(600, "test")[1].endswith("/600/annotations/test.csv")


def test_cvdf_split_download_extract_corrupt_interrupted_and_rerun(tmp_path):
  files, content = cvdf_mirror(tmp_path)
  video_dir = tmp_path / "videos"
  with MirrorServer(files, cut={"/600/val/part_3.tar.gz"}) as server:
    results = {r.key: r for r in download_split(600, "val", video_dir, base_url=server.url,
                                                 num_workers=2, progress=False)}
    assert {k: (r.status, r.clips) for k, r in results.items()} == {
        "600/val/part_0.tar.gz": ("ok", 2), "600/val/part_1.tar.gz": ("ok", 3),
        "600/val/part_2.tar.gz": ("failed", 0), "600/val/part_3.tar.gz": ("ok", 2)}
    assert results["600/val/part_2.tar.gz"].reason == "corrupt"
    assert server.gets("/600/val/part_3.tar.gz")[0] == 0 and len(
        server.gets("/600/val/part_3.tar.gz")) == 2  # cut short, then fetched again
    assert_clips_in_place(video_dir, content, DELIVERED)
    assert not (video_dir / LOST.relpath).exists()
    assert (video_dir / "validation" / STRAY.filename).read_bytes() == content[STRAY.filename]
    assert {k: r["status"] for k, r in read_report(video_dir).items()} == {
        "600/val/part_0.tar.gz": "ok", "600/val/part_1.tar.gz": "ok",
        "600/val/part_2.tar.gz": "failed", "600/val/part_3.tar.gz": "ok"}

    before = list(server.requests)
    again = {r.key: r for r in download_split(600, "validation", video_dir,
                                               base_url=server.url, progress=False)}
    assert server.requests[len(before):] == [("/600/val/part_2.tar.gz", 0)]
    assert {k: r.status for k, r in again.items()} == {
        "600/val/part_0.tar.gz": "skipped", "600/val/part_1.tar.gz": "skipped",
        "600/val/part_2.tar.gz": "failed", "600/val/part_3.tar.gz": "skipped"}

    files["/600/val/part_2.tar.gz"] = fixed_part_2(content)  # the mirror repairs the shard
    [fixed] = [r for r in download_split(600, "validation", video_dir, base_url=server.url,
                                         progress=False) if r.status != "skipped"]
    assert (fixed.key, fixed.status, fixed.clips) == ("600/val/part_2.tar.gz", "ok", 1)
    assert_clips_in_place(video_dir, content, CLIPS)
    assert len(server.requests) == len(before) + 2
    assert all(r.status == "skipped" for r in download_split(
        600, "validation", video_dir, base_url=server.url, progress=False))
    assert len(server.requests) == len(before) + 2


def test_cvdf_missing_list_is_a_user_error(tmp_path):
  files, _ = cvdf_mirror(tmp_path)
  del files["/600/val/k600_val_path.txt"]
  with MirrorServer(files) as server, pytest.raises(UserError, match="shard list.*base_url"):
    download_split(600, "validation", tmp_path / "v", base_url=server.url, progress=False)
  with MirrorServer({}) as server, pytest.raises(UserError, match="annotations"):
    download_split(400, "validation", tmp_path / "v", base_url=server.url, progress=False)


def run_until_killed(script: str, done: callable, cwd: Path, timeout: float = 90.0) -> None:
  """Runs `script` in a fresh Python and SIGKILLs it as soon as `done()` holds."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
  process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.monotonic() + timeout
  try:
    while not done():
      assert process.poll() is None, process.stderr.read().decode()[-2000:]
      assert time.monotonic() < deadline, "the child never reached the kill point"
      time.sleep(0.02)
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
  assert process.returncode == -signal.SIGKILL


def test_cvdf_sigkill_mid_run_then_resume(tmp_path):
  files, content = cvdf_mirror(tmp_path, padding=48 << 10)
  video_dir = tmp_path / "videos"
  with MirrorServer(files, delay=0.03, chunk=4096) as server:
    run_until_killed(f"""
        from i3d.kinetics.download import download_split
        download_split(600, "validation", {str(video_dir)!r}, base_url={server.url!r},
                       num_workers=1, progress=False)
        """, lambda: server.bytes_sent["/600/val/part_1.tar.gz"] > 0, tmp_path)
    done_before = {k for k, r in read_report(video_dir).items() if r["status"] == "ok"}
    assert done_before == {"600/val/part_0.tar.gz"}
    requests_before = len(server.requests)
    results = download_split(600, "validation", video_dir, base_url=server.url,
                             num_workers=2, progress=False)
    later = [path for path, _ in server.requests[requests_before:]]
  assert "/600/val/part_0.tar.gz" not in later and "/600/val/k600_val_path.txt" not in later
  assert sorted(later) == ["/600/val/part_1.tar.gz", "/600/val/part_2.tar.gz",
                           "/600/val/part_3.tar.gz"]
  assert {r.key: r.status for r in results}["600/val/part_1.tar.gz"] == "ok"
  assert_clips_in_place(video_dir, content, DELIVERED)


class FakeYouTube:
  """An injected fetcher: ids starting "gone" are unavailable, "flaky" fail once, "boom" raise."""

  def __init__(self, content: bytes):
    self.content, self.calls = content, []

  def __call__(self, clip: Clip, dest: Path) -> None:
    self.calls.append(clip.youtube_id)
    if clip.youtube_id.startswith("gone"):
      raise FetchError(kinetics_download.classify("ERROR: [youtube] Video unavailable"), "gone")
    if clip.youtube_id.startswith("flaky") and self.calls.count(clip.youtube_id) == 1:
      dest.write_bytes(b"half")  # a partial file that must never count
      raise FetchError("network", "Connection reset by peer")
    if clip.youtube_id.startswith("boom"):
      raise RuntimeError("unexpected")
    dest.write_bytes(self.content)


def test_youtube_clips_with_injected_fetcher(tmp_path):
  clips = [Clip(name, 0, 10, "train", "zumba") for name in
           ("good1", "good2", "gone1", "flaky", "boom")]
  clips.append(Clip("there", 5, 15, "train", "zumba"))
  (tmp_path / "train" / "zumba").mkdir(parents=True)
  (tmp_path / "train" / "zumba" / clips[-1].filename).write_bytes(b"already here")
  video = video_bytes(tmp_path / "src", 5)
  fetcher = FakeYouTube(video)
  results = {r.key: r for r in download_clips(clips, tmp_path, fetcher=fetcher, num_workers=3,
                                               retries=2, backoff=0.0, progress=False)}
  status = {k.split("_")[0]: (r.status, r.reason, r.attempts) for k, r in results.items()}
  assert status == {"good1": ("ok", "", 1), "good2": ("ok", "", 1),
                    "gone1": ("failed", "unavailable", 1), "flaky": ("ok", "", 2),
                    "boom": ("failed", "error", 1), "there": ("skipped", "present", 0)}
  assert "there" not in fetcher.calls
  for name in ("good1", "good2", "flaky"):
    clip = next(c for c in clips if c.youtube_id == name)
    assert (tmp_path / clip.relpath).read_bytes() == video
  assert not (tmp_path / "train" / "zumba" / clips[2].filename).exists()
  assert {k: r["reason"] for k, r in read_report(tmp_path).items()} == {
      r.key: r.reason for r in results.values() if r.status != "skipped"}

  fetcher.calls.clear()
  download_clips(clips, tmp_path, fetcher=fetcher, backoff=0.0, progress=False)
  assert sorted(fetcher.calls) == ["boom", "gone1"]  # only the failures are tried again


def test_transient_failures_are_retried_with_backoff_until_exhausted(tmp_path, monkeypatch):
  sleeps = []
  monkeypatch.setattr(kinetics_download.time, "sleep", sleeps.append)

  def offline(clip: Clip, dest: Path) -> None:
    raise FetchError("network", "timed out")

  [result] = download_clips([CLIPS[0]], tmp_path, fetcher=offline, retries=3, backoff=0.5,
                            progress=False)
  assert (result.status, result.reason, result.attempts) == ("failed", "network", 4)
  assert sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("message, reason", [
    ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access", "private"),
    ("ERROR: [youtube] abc: Video unavailable. This video is private", "private"),
    ("ERROR: [youtube] abc: Video unavailable", "unavailable"),
    ("ERROR: [youtube] abc: This video has been removed by the uploader", "unavailable"),
    ("ERROR: [youtube] abc: Video unavailable. The uploader has not made this video available "
     "in your country", "blocked"),
    ("ERROR: [youtube] abc: Sign in to confirm your age", "blocked"),
    ("ERROR: [youtube] abc: Sign in to confirm you're not a bot", "rate_limited"),
    ("ERROR: Unable to download webpage: <urlopen error [Errno -3] Temporary failure in name "
     "resolution>", "network"),
    ("ERROR: [download] Got error: The read operation timed out", "network"),
    ("ERROR: Unable to download webpage: HTTP Error 404: Not Found", "unavailable"),
    ("something else entirely", "error"),
])
def test_classify_yt_dlp_messages(message, reason):
  assert kinetics_download.classify(message) == reason
  assert FetchError(reason, message).transient == (reason in ("network", "rate_limited"))


def test_real_yt_dlp_fetcher_cuts_the_window_from_a_local_server(tmp_path):
  source = write_video(tmp_path / "src.mp4", frames=60)  # 6 s at 10 fps
  clips = [Clip("local", 1, 3, "train", "zumba"), Clip("missing", 0, 10, "train", "zumba")]
  with MirrorServer({"/local.mp4": source.read_bytes()}) as server:
    fetcher = kinetics_download.youtube_fetcher(server.url + "/{youtube_id}.mp4")
    results = {r.key: r for r in download_clips(clips, tmp_path / "v", fetcher=fetcher,
                                                 retries=0, progress=False)}
  assert results[clips[0].filename].status == "ok"
  assert (results[clips[1].filename].status, results[clips[1].filename].reason) == (
      "failed", "unavailable")
  capture = cv2.VideoCapture(str(tmp_path / "v" / clips[0].relpath))
  assert abs(capture.get(cv2.CAP_PROP_FRAME_COUNT) - 20) <= 2  # 2 s of the 6 s source
  assert decode.is_readable(tmp_path / "v" / clips[0].relpath)


def test_youtube_sigkill_mid_run_then_resume(tmp_path):
  clips = [Clip(f"clip{i:02d}", 0, 10, "train", "zumba") for i in range(10)]
  annotations = kinetics.write_annotations(clips, tmp_path / "subset.csv")
  video_dir = tmp_path / "videos"
  source = write_video(tmp_path / "src.mp4", frames=5)
  run_until_killed(f"""
      import shutil, time
      from i3d import kinetics
      from i3d.kinetics.download import download_clips
      def slow(clip, dest):
        dest.write_bytes(b"part")
        time.sleep(0.2)
        shutil.copy({str(source)!r}, dest)
      clips = kinetics.read_annotations({str(annotations)!r}).clips
      download_clips(clips, {str(video_dir)!r}, fetcher=slow, num_workers=2, progress=False)
      """, lambda: len(read_report(video_dir)) >= 3, tmp_path)
  done_before = {k for k, r in read_report(video_dir).items() if r["status"] == "ok"}
  present = set(kinetics.local_clips(video_dir))
  assert 3 <= len(done_before) <= len(present) < len(clips) and done_before <= present
  fetcher = FakeYouTube(source.read_bytes())
  download_clips(clips, video_dir, fetcher=fetcher, num_workers=2, progress=False)
  fetched = [f"{name}_000000_000010.mp4" for name in fetcher.calls]
  assert sorted(fetched) == sorted({c.filename for c in clips} - present)  # each once
  for clip in clips:
    assert (video_dir / clip.relpath).read_bytes() == source.read_bytes()
  assert len(kinetics.local_clips(video_dir)) == len(clips)
  assert not list(video_dir.rglob("*.part")) and not list((video_dir / ".partial").iterdir())


def test_shards_with_the_same_name_in_two_splits_are_both_fetched(tmp_path):
  video = write_video(tmp_path / "src.mp4").read_bytes()
  files, clips = {}, {}
  for split, short in (("validation", "val"), ("train", "train")):
    clips[split] = Clip(f"in-{short}", 0, 10, split, "zumba")
    files[f"/400/{short}/k400_{short}_path.txt"] = b"part_0.tar.gz\n"
    files[f"/400/{short}/part_0.tar.gz"] = tar_gz({clips[split].filename: video})
    files[f"/400/annotations/{short}.csv"] = (
        f"label,youtube_id,time_start,time_end,split\nzumba,in-{short},0,10,{short}\n".encode())
  with MirrorServer(files) as server:
    for split in clips:
      [result] = download_split(400, split, tmp_path / "v", base_url=server.url, progress=False)
      assert (result.key, result.status) == (f"400/{_short(split)}/part_0.tar.gz", "ok")
  assert_clips_in_place(tmp_path / "v", {c.filename: video for c in clips.values()},
                        list(clips.values()))


def _short(split: str) -> str:
  """The CVDF folder name of a split."""
  return {"validation": "val", "train": "train"}[split]


def test_cached_annotations_are_verified_before_use(tmp_path):
  """A foreign or damaged cached file is refetched online and refused offline, in one line."""
  rows = "label,youtube_id,time_start,time_end,split\nzumba,good,0,10,val\n"
  path = "/400/annotations/val.csv"
  cached = kinetics_download.annotations_cache(400) / "val.csv"
  with MirrorServer({path: rows.encode()}) as mirror:
    assert kinetics_download.fetch_annotations(400, "validation", base_url=mirror.url) == cached
    # From this mirror, unchanged: used as it is, not fetched again.
    kinetics_download.fetch_annotations(400, "validation", base_url=mirror.url)
    assert len(mirror.gets(path)) == 1
    # Fetched from another mirror: not the official file.
    with pytest.raises(UserError, match=r"was fetched from 'http://127\.0\.0\.1:\d+/400/anno"):
      kinetics_download.fetch_annotations(400, "validation", offline=True)
    # Changed since: refetched online.
    cached.write_text(rows + "yoga,bad,0,10,val\n")
    kinetics_download.fetch_annotations(400, "validation", base_url=mirror.url)
    assert len(mirror.gets(path)) == 2 and cached.read_text() == rows
  # Placed by hand without a record, and far too short for an official file: refused offline.
  next(cached.parent.glob(".*.fetched.json")).unlink()
  with pytest.raises(UserError) as error:
    kinetics_download.fetch_annotations(400, "validation", offline=True)
  assert "\n" not in str(error.value)
  assert f"{cached} holds 1 rows, fewer than any official annotation file" in str(error.value)
  # A hand-placed file of official size is trusted.
  cached.write_text(rows.splitlines()[0] + "\n" + "zumba,good,0,10,val\n" * 10_000)
  assert kinetics_download.fetch_annotations(400, "validation", offline=True) == cached

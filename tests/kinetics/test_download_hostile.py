"""Kinetics downloads fed hostile names and archives: nothing is written or deleted outside the
video folder, archives are bounded, and only clips that decode are published (issue 15, 1-3)."""

from pathlib import Path

import pytest

from i3d.errors import UserError
from i3d.kinetics import Clip
from i3d.kinetics.download import download_clips, download_split
from tests.support.cli import one_line_error, run_cli
from tests.support.servers import MirrorServer, tar_gz, write_video

ANNOTATIONS = "/400/annotations/val.csv"
LISTING = "/400/val/k400_val_path.txt"


def victim(tmp_path: Path) -> Path:
  """A folder outside the video folder that a path-like youtube id names."""
  folder = tmp_path / "victim_000000_000010"
  folder.mkdir()
  (folder / "precious.txt").write_text("keep me")
  return folder


def test_a_clip_id_that_is_a_path_never_writes_or_deletes_outside(tmp_path):
  target = victim(tmp_path)
  calls = []
  clip = Clip(str(tmp_path / "victim"), 0, 10, "validation", "abseiling")
  [result] = download_clips([clip], tmp_path / "videos", fetcher=lambda c, d: calls.append(d),
                            retries=0, progress=False)
  assert result.status == "failed" and "lies outside" in result.message
  assert calls == [] and (target / "precious.txt").read_text() == "keep me"
  dotted = Clip("../../escape", 0, 10, "validation", "../../up")
  [result] = download_clips([dotted], tmp_path / "videos", fetcher=lambda c, d: calls.append(d),
                            retries=0, progress=False)
  assert result.status == "failed" and calls == []


def test_download_command_skips_path_rows_before_touching_anything(tmp_path, capsys):
  target = victim(tmp_path)
  rows = tmp_path / "rows.csv"
  rows.write_text(f"label,youtube_id,time_start,time_end,split,is_cc\n"
                  f"abseiling,{tmp_path / 'victim'},0,10,validation,\n")
  err = one_line_error(capsys, "kinetics", "download", rows, "--video_dir", tmp_path / "v")
  assert "not a safe file name" in err
  assert (target / "precious.txt").read_text() == "keep me"


def mirror(shards: dict[str, bytes], listing: str) -> dict[str, bytes]:
  """A Kinetics-400 validation mirror at the server's root serving `shards`."""
  files = {f"/400/val/{name}": data for name, data in shards.items()}
  files[LISTING] = listing.encode()
  files[ANNOTATIONS] = b"label,youtube_id,time_start,time_end,split\nzumba,good,0,10,val\n"
  return files


@pytest.mark.parametrize("line", ["..", "/", "part_0.tar.gz/..", "x.tar.gz?a=b", "evil"])
def test_shard_names_from_the_network_must_be_plain_tar_gz_names(tmp_path, line):
  before = Path("/400").exists()
  with MirrorServer(mirror({}, f"part_0.tar.gz\n{line}\n")) as server:
    with pytest.raises(UserError, match=r"line 2: .* does not end in a plain NAME\.tar\.gz"):
      download_split(400, "validation", tmp_path / "v", base_url=server.url, progress=False)
  assert Path("/400").exists() == before  # nothing written at the filesystem root


def fetch_one_shard(tmp_path: Path, shard: bytes):
  """The result of downloading a split of one shard into `tmp_path / "v"`."""
  with MirrorServer(mirror({"part_0.tar.gz": shard}, "part_0.tar.gz\n")) as server:
    [result] = download_split(400, "validation", tmp_path / "v", base_url=server.url,
                              progress=False)
  return result


def clip_video(tmp_path: Path) -> bytes:
  return write_video(tmp_path / "src.mp4", frames=5).read_bytes()


def test_shard_members_over_the_size_limit_are_refused(tmp_path, monkeypatch):
  monkeypatch.setenv("I3D_MAX_CLIP_BYTES", "2000")
  big = b"\0" * 3000  # a small shard may unpack to a huge file: the header's size is checked
  shard = tar_gz({"good_000000_000010.mp4": big})
  result = fetch_one_shard(tmp_path, shard)
  assert (result.status, result.reason) == ("failed", "corrupt")
  assert "over the 2000-byte limit ($I3D_MAX_CLIP_BYTES)" in result.message
  assert not list((tmp_path / "v").rglob("*.mp4"))


def test_duplicate_member_names_are_refused(tmp_path):
  video = clip_video(tmp_path)
  shard = tar_gz({"a/good_000000_000010.mp4": video, "b/good_000000_000010.mp4": b"x" * 111})
  result = fetch_one_shard(tmp_path, shard)
  assert result.status == "failed" and "appears twice" in result.message
  assert not list((tmp_path / "v").rglob("*.mp4"))


def test_a_member_that_does_not_decode_is_not_published(tmp_path):
  video = clip_video(tmp_path)
  shard = tar_gz({"good_000000_000010.mp4": video, "junk_000000_000010.mp4": b"x" * 111})
  result = fetch_one_shard(tmp_path, shard)
  assert (result.status, result.reason) == ("failed", "corrupt")
  assert "1 clips do not decode" in result.message and "junk_000000_000010.mp4" in result.message
  assert (tmp_path / "v" / "validation" / "zumba" / "good_000000_000010.mp4").read_bytes() == video
  assert not (tmp_path / "v" / "validation" / "junk_000000_000010.mp4").exists()


def test_a_fetched_clip_that_does_not_decode_is_not_published(tmp_path):
  clip = Clip("garbage1234", 0, 10, "validation", "zumba")
  [result] = download_clips([clip], tmp_path, fetcher=lambda c, dest: dest.write_bytes(b"x" * 99),
                            retries=0, progress=False)
  assert (result.status, result.reason) == ("failed", "corrupt")
  assert not (tmp_path / clip.relpath).exists()


@pytest.mark.parametrize("flags, message", [
    (["--retries", "-1"], "0 or more retries"), (["--num_workers", "0"], "at least 1 worker")])
def test_bad_pool_flags_are_one_line(tmp_path, capsys, flags, message):
  err = one_line_error(capsys, "kinetics", "download", "--split", "validation",
                       "--video_dir", tmp_path, *flags)
  assert message in err


def test_file_base_url_is_one_line(tmp_path, capsys):
  assert run_cli("kinetics", "download", "--split", "validation", "--video_dir", tmp_path / "v",
                 "--base_url", f"file://{tmp_path}") == 2
  err = capsys.readouterr().err
  assert "Traceback" not in err  # the usage, then one line saying what to do
  assert err.splitlines()[-1].startswith("i3d kinetics download: error: ")
  assert "use an http" in err.splitlines()[-1]


@pytest.mark.parametrize("variable", ["I3D_KINETICS_DIR", "XDG_CACHE_HOME", "HOME"])
def test_unwritable_cache_folder_is_one_line(tmp_path, capsys, monkeypatch, variable):
  (tmp_path / "a_file").write_text("")
  monkeypatch.delenv("I3D_KINETICS_DIR", raising=False)
  monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
  monkeypatch.setenv(variable, str(tmp_path / "a_file"))
  assert run_cli("kinetics", "index", "--split", "validation", "--video_dir", tmp_path,
                 "--base_url", "http://127.0.0.1:9") == 2
  err = capsys.readouterr().err
  assert "Traceback" not in err  # the usage, then one line saying what to do
  assert err.splitlines()[-1].startswith("i3d kinetics index: error: cannot write to")

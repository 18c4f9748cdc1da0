"""Hostile FVD sets: pipes that would block, headers that would exhaust memory (issue 23, items
7 and 9), refused with one line naming the file before anything is decoded or allocated."""

import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from i3d.embed import sources
from i3d.errors import UserError


def png_claiming(width: int, height: int) -> bytes:
  """A small PNG whose header (IHDR, with a valid checksum) claims `width` x `height`."""
  png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
  body = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
  return png[:12] + body + struct.pack(">I", zlib.crc32(body)) + png[33:]


def test_a_named_pipe_in_a_set_is_refused_without_blocking(tmp_path):
  os.mkfifo(tmp_path / "clips.npy")
  with pytest.raises(UserError, match="clips.npy: a named pipe, not a regular file"):
    sources.list_clips(tmp_path)
  with pytest.raises(UserError, match="clips.npy: a named pipe"):
    sources.list_clips(tmp_path / "clips.npy")
  frames = tmp_path / "set" / "clip"
  frames.mkdir(parents=True)
  cv2.imwrite(str(frames / "0.png"), np.zeros((8, 8, 3), np.uint8))
  os.mkfifo(frames / "1.png")
  [clip] = sources.list_clips(tmp_path / "set")
  with pytest.raises(UserError, match="1.png: a named pipe"):
    sources.read_clip(clip, 2)


def test_a_png_header_declaring_a_huge_frame_is_refused_before_decoding(tmp_path):
  clip = tmp_path / "set" / "clip"
  clip.mkdir(parents=True)
  (clip / "0.png").write_bytes(png_claiming(20000, 20000))
  [source] = sources.list_clips(tmp_path / "set")
  with pytest.raises(UserError, match=r"0.png: frames larger than 4096 pixels a side "
                                      r"\(Image size \(400000000 pixels\) exceeds"):
    sources.read_clip(source, 1)
  (clip / "0.png").write_bytes(png_claiming(5000, 100))
  with pytest.raises(UserError, match=r"\(5000x100 declared\)"):
    sources.read_clip(source, 1)


def test_an_npy_header_declaring_millions_of_clips_is_refused_before_listing(tmp_path):
  path = tmp_path / "many.npy"
  with open(path, "wb") as f:
    np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                             "shape": (30_000_000, 1, 1, 1, 3)})
    f.truncate(f.tell() + 90_000_000)  # sparse: the size the header claims, no disk used
  with pytest.raises(UserError, match=r"many.npy: its header declares 30000000 clips, more "
                                      r"than 1000000 \(\$I3D_MAX_CLIPS\)"):
    sources.list_clips(path)


def test_an_npy_of_an_exotic_float_is_one_line(tmp_path):
  np.save(tmp_path / "wide.npy", np.zeros((2, 16, 8, 8, 3), np.longdouble))
  with pytest.raises(UserError, match="expected uint8 or float frames"):
    sources.list_clips(tmp_path / "wide.npy")

"""Hostile `.npz` inputs: a decompression bomb and a named pipe are refused in one line before
anything is read (issue 23, items 5 and 9)."""

import io
import os
import zipfile

import numpy as np
import pytest

from i3d.errors import UserError
from i3d.inputs import cache


def npy_bytes(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  np.save(buffer, array)
  return buffer.getvalue()


def test_a_member_declaring_far_more_than_it_stores_is_refused(tmp_path):
  path = tmp_path / "clip_inputs.npz"
  with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
    archive.writestr("rgb.npy", npy_bytes(np.zeros((1, 60, 224, 224, 3), np.float32)))
  with pytest.raises(UserError, match=r"clip_inputs.npz: member rgb.npy declares 36126848 bytes "
                                      r"from \d+ stored, over 100 times"):
    cache.load_inputs(path)


def test_members_declaring_more_than_the_free_memory_are_refused(tmp_path, monkeypatch):
  path = tmp_path / "clip_inputs.npz"
  np.savez(path, rgb=np.zeros((1, 9, 224, 224, 3), np.float32))
  assert cache.load_inputs(path)[0]["rgb"].shape == (1, 9, 224, 224, 3)
  monkeypatch.setattr(cache.env, "available_memory", lambda: 1 << 20)
  with pytest.raises(UserError, match="more than the 1048576 bytes of memory free"):
    cache.load_inputs(path)


def test_a_named_pipe_as_inputs_is_refused_without_blocking(tmp_path):
  os.mkfifo(tmp_path / "x_inputs.npz")
  with pytest.raises(UserError, match="x_inputs.npz: a named pipe, not a regular file"):
    cache.load_inputs(tmp_path / "x_inputs.npz")

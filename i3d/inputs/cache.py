"""Model inputs of a video (RGB and flow stacks, centre crop) and their `.npz` cache.

A cache holds float32 `rgb` (1, T, 224, 224, 3) and `flow` (1, T, 224, 224, 2) in [-1, 1], the
layout of the released sample `.npy` files, plus a JSON `settings` record (trim, backend, flow
parameters, and the video's SHA-256). It is reused only when the settings match, so flow is
computed once per video and setting.
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from i3d._util import env, files
from i3d.errors import UserError
from i3d.inputs import flow, transforms
from i3d.inputs.settings import InputSettings
from i3d.model.streams import STREAMS, check_clips


def default_cache_path(source: str | Path) -> Path:
  """`clip.mp4` -> `clip_inputs.npz` beside it."""
  source = Path(source)
  return source.with_name(f"{source.stem}_inputs.npz")


def compute_inputs(source: str | Path, settings: InputSettings = InputSettings(),
                   streams: Iterable[str] = STREAMS) -> dict[str, np.ndarray]:
  """The centre-cropped model inputs of `source` for `streams`: {name: (1, T, 224, 224, C)}."""
  frames = transforms.resized_frames(source, settings.time_start, settings.time_end)
  offsets = transforms.crop_offsets(frames.shape[1], frames.shape[2])[0]
  out = {}
  if "rgb" in streams:
    out["rgb"] = transforms.rgb_inputs(frames, offsets).numpy()[None]
  if "flow" in streams:
    out["flow"] = flow.flow_inputs(frames, offsets, settings)[None]
  return out


def save_inputs(path: str | Path, inputs: dict[str, np.ndarray], record: dict) -> Path:
  """Write `inputs` and the settings `record` to `path` (.npz)."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with files.atomic_write(path, "wb") as f:
    np.savez(f, settings=np.array(json.dumps(record, sort_keys=True)),
             **{k: v.astype(np.float32) for k, v in inputs.items()})  # type: ignore[arg-type]
  return path


def load_inputs(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
  """(inputs, settings record) of a cache file; an unreadable file, or inputs of the wrong dtype,
  shape or with non-finite values (`check_clips`), is a `UserError`."""
  path = Path(path)
  files.check_regular(path)
  try:
    with zipfile.ZipFile(path) as archive:
      _check_declared_sizes(path, archive.infolist())
      for info in archive.infolist():
        with archive.open(info) as member:
          files.check_npy_header(member, info.file_size, f"{path}: {info.filename}")
    with np.load(path, allow_pickle=False) as data:
      record = json.loads(str(data["settings"])) if "settings" in data else {}
      inputs = {k: data[k] for k in STREAMS if k in data}
  except FileNotFoundError:
    raise UserError(f"{path}: no such file") from None
  except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
    raise UserError(f"{path}: not a readable inputs .npz file ({e})") from None
  if not isinstance(record, dict):
    raise UserError(f"{path}: its settings record is not a JSON object")
  for stream, clips in inputs.items():
    check_clips(clips, stream, str(path), min_frames=1)
  return inputs, record


def _check_declared_sizes(path: Path, members: list[zipfile.ZipInfo]) -> None:
  """A `UserError` unless what the members of the `.npz` `path` declare they decompress to is
  bounded before any is read: each at most `$I3D_MAX_COMPRESSION_RATIO` times its stored size,
  and all together at most the memory this machine has free (`env.available_memory`)."""
  ratio = env.limit("I3D_MAX_COMPRESSION_RATIO")
  for info in members:
    if info.file_size > ratio * max(info.compress_size, 1):
      raise UserError(f"{path}: member {info.filename} declares {info.file_size} bytes from "
                      f"{info.compress_size} stored, over {ratio} times "
                      f"($I3D_MAX_COMPRESSION_RATIO); refusing to decompress it (store inputs "
                      f"uncompressed, np.savez)")
  declared, free = sum(info.file_size for info in members), env.available_memory()
  if declared > free:
    raise UserError(f"{path}: its members declare {declared} bytes, more than the {free} bytes "
                    f"of memory free; trim the clip or use a larger machine")


def cached_inputs(source: str | Path, settings: InputSettings, streams: Iterable[str],
                  cache: str | Path | None) -> dict[str, np.ndarray]:
  """Inputs of `source` from `cache` when it holds `streams` made with `settings`, else computed.

  A damaged or malformed cache is treated as absent (a warning says so) and recomputed.
  """
  streams = tuple(streams)
  source = Path(source)
  if cache is not None and Path(cache).is_file() and source.is_file():
    try:
      inputs, record = load_inputs(cache)
    except UserError as e:
      print(f"warning: ignoring the cache ({e}); computing the inputs again", file=sys.stderr)
    else:
      if record == settings.record(source) and all(s in inputs for s in streams):
        return {s: inputs[s] for s in streams}
  return compute_inputs(source, settings, streams)

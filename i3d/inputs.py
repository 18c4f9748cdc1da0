"""Model inputs for a video (RGB and flow stacks) and their `.npz` cache.

A cache holds float32 `rgb` (1, T, 224, 224, 3) and `flow` (1, T, 224, 224, 2) in [-1, 1], the
layout of the released sample `.npy` files, plus a JSON `settings` record (trim, backend, flow
parameters, and the video's SHA-256). It is reused only when the settings match, so flow is
computed once per video and setting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np
import tensorflow as tf

from i3d import flow, video
from i3d.errors import UserError

STREAMS = ("rgb", "flow")
CACHE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class InputSettings:
  """Everything that changes the inputs computed from a video."""
  time_start: float | None = None
  time_end: float | None = None
  flow_backend: str = "tf"
  flow_params: flow.TVL1Params = flow.TVL1Params()

  def record(self, source: Path) -> dict:
    """The JSON-able record stored in (and compared against) a cache for video `source`."""
    return {"format": CACHE_FORMAT, "fps": video.FPS, "resize": video.RESIZE_SHORT_SIDE,
            "crop": video.CROP_SIZE, "time_start": self.time_start, "time_end": self.time_end,
            "flow_backend": self.flow_backend, "flow_params": dataclasses.asdict(self.flow_params),
            "video_sha256": file_sha256(source)}


def file_sha256(path: Path) -> str:
  """SHA-256 of a file's bytes: identifies the video a cache was made from."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def default_cache_path(source: str | Path) -> Path:
  """`clip.mp4` -> `clip_inputs.npz` beside it."""
  source = Path(source)
  return source.with_name(f"{source.stem}_inputs.npz")


def compute_inputs(source: str | Path, settings: InputSettings = InputSettings(),
                   streams: Iterable[str] = STREAMS) -> dict[str, np.ndarray]:
  """The centre-cropped model inputs of `source` for `streams`: {name: (1, T, 224, 224, C)}."""
  frames = video.resized_frames(source, settings.time_start, settings.time_end)
  offsets = video.crop_offsets(frames.shape[1], frames.shape[2])
  out = {}
  if "rgb" in streams:
    out["rgb"] = video.rgb_inputs(frames, offsets).numpy()[None]
  if "flow" in streams:
    out["flow"] = flow_inputs(frames, offsets, settings)[None]
  return out


def flow_inputs(frames: tf.Tensor, offsets: tuple[int, int], settings: InputSettings) -> np.ndarray:
  """Resized RGB frames (T, H, W, 3) -> flow input (T, 224, 224, 2) in [-1, 1].

  Flow t is from frame t to t+1; the last frame reuses the last field so both streams have T
  frames. A single frame has no motion: zero flow.
  """
  gray = video.to_gray(frames).numpy()
  if len(gray) < 2:
    fields = np.zeros(gray.shape + (2,), np.float32)
  else:
    fields = flow.compute_flow(gray, settings.flow_backend, settings.flow_params)
    fields = np.concatenate([fields, fields[-1:]])
  return video.crop(flow.normalise_flow(fields), offsets).numpy()


def save_inputs(path: str | Path, inputs: dict[str, np.ndarray], record: dict) -> Path:
  """Write `inputs` and the settings `record` to `path` (.npz)."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "wb") as f:
    np.savez(f, settings=np.array(json.dumps(record, sort_keys=True)),
             **{k: v.astype(np.float32) for k, v in inputs.items()})
  return path


def load_inputs(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
  """(inputs, settings record) of a cache file; an unreadable file is a `UserError`."""
  path = Path(path)
  try:
    with np.load(path, allow_pickle=False) as data:
      record = json.loads(str(data["settings"])) if "settings" in data else {}
      return {k: data[k] for k in STREAMS if k in data}, record
  except FileNotFoundError:
    raise UserError(f"{path}: no such file") from None
  except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
    raise UserError(f"{path}: not a readable inputs .npz file ({e})") from None


def cached_inputs(source: str | Path, settings: InputSettings, streams: Iterable[str],
                  cache: str | Path | None) -> dict[str, np.ndarray]:
  """Inputs of `source` from `cache` when it holds `streams` made with `settings`, else computed."""
  streams = tuple(streams)
  source = Path(source)
  if cache is not None and Path(cache).is_file() and source.is_file():
    inputs, record = load_inputs(cache)
    if record == settings.record(source) and all(s in inputs for s in streams):
      return {s: inputs[s] for s in streams}
  return compute_inputs(source, settings, streams)

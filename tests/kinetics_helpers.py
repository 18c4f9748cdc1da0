"""Small generated Kinetics clips shared by the Kinetics tests."""

from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (32, 24)) -> Path:
  """Writes a tiny decodable mp4 (MPEG-4 part 2) whose frames brighten over time."""
  path.parent.mkdir(parents=True, exist_ok=True)
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
  for i in range(frames):
    writer.write(np.full((size[1], size[0], 3), (i * 20) % 256, np.uint8))
  writer.release()
  return path

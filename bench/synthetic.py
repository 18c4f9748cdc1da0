"""Synthetic image pairs with exact ground-truth flow.

The texture is an analytic sum of sinusoids, so the moved image is evaluated exactly at the
moved coordinates (no resampling error in the ground truth): second(M x) = first(x), and the
flow at x is M x - x for the affine map M of each case.
"""

import numpy as np

CASES = {  # name: (rotation degrees, zoom, shift x, shift y) about the image centre
    "translate_subpixel": (0.0, 1.0, 0.37, -0.62),
    "translate_2.6px": (0.0, 1.0, 2.6, 1.3),
    "rotate_3deg": (3.0, 1.0, 0.0, 0.0),
    "zoom_1.04": (0.0, 1.04, 0.0, 0.0),
}


def _texture(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
  """A random sum of 40 sinusoids (amplitude ~ 1 / frequency) evaluated at (x, y)."""
  rng = np.random.default_rng(seed)
  out = np.zeros_like(x)
  for _ in range(40):
    frequency = rng.uniform(0.02, 0.3)
    angle, phase = rng.uniform(0, 2 * np.pi, 2)
    out += np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)) + phase) / (
        frequency / 0.02)
  return out


def affine(case: str, height: int, width: int) -> np.ndarray:
  """The 2x3 map M of `case`: rotation and zoom about the centre, then the shift."""
  angle, zoom, dx, dy = CASES[case]
  a = np.deg2rad(angle)
  linear = zoom * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
  centre = np.array([(width - 1) / 2, (height - 1) / 2])
  return np.concatenate([linear, (centre - linear @ centre + [dx, dy])[:, None]], 1)


def pair(case: str, height: int, width: int, seed: int = 0):
  """(first, second, flow) float32 images in [0, 255] and the exact flow (H, W, 2)."""
  matrix = affine(case, height, width)
  ys, xs = np.mgrid[:height, :width].astype(np.float64)
  inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
  points = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
  sx, sy = (inverse @ points).reshape(2, height, width)
  first, second = _texture(xs, ys, seed), _texture(sx, sy, seed)
  low, high = first.min(), first.max()
  first, second = ((np.clip((im - low) / (high - low), 0, 1) * 255).astype(np.float32)
                   for im in (first, second))
  mapped = (matrix @ points).reshape(2, height, width)
  flow = np.stack([mapped[0] - xs, mapped[1] - ys], -1).astype(np.float32)
  return first, second, flow


def end_point_error(flow: np.ndarray, truth: np.ndarray, border: int = 8) -> float:
  """Mean Euclidean distance between flows, ignoring a `border` where pixels leave the image."""
  inner = (slice(border, -border), slice(border, -border))
  return float(np.linalg.norm(flow[..., *inner, :] - truth[..., *inner, :], axis=-1).mean())

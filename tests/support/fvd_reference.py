"""An independent FVD: TF1's bilinear resize and the textbook Fréchet distance, in NumPy/SciPy."""

import numpy as np
import scipy.linalg


def legacy_bilinear(frames: np.ndarray, size: int) -> np.ndarray:
  """TF1's resize_bilinear (no half-pixel centres) of (..., H, W, C) frames to size x size:
  source = target * in / out."""
  def axis(n):
    src = np.arange(size) * (n / size)
    lo = np.floor(src).astype(int)
    return lo, np.minimum(lo + 1, n - 1), src - lo
  y0, y1, wy = axis(frames.shape[-3])
  x0, x1, wx = axis(frames.shape[-2])
  f = frames.astype(np.float64)
  rows = f[..., y0, :, :] + (f[..., y1, :, :] - f[..., y0, :, :]) * wy[:, None, None]
  return rows[..., x0, :] + (rows[..., x1, :] - rows[..., x0, :]) * wx[:, None]


def scipy_fvd(a: np.ndarray, b: np.ndarray) -> float:
  """The textbook FID formula on features (N, d) with SciPy's sqrtm."""
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  root = scipy.linalg.sqrtm(s1 @ s2).real
  return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * root))

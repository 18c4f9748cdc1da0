"""The side-by-side reference: I3D written straightforwardly in PyTorch, as the popular port does.

Each unit pads to TensorFlow's SAME (asymmetric for stride 2), then Conv3d, BatchNorm3d, ReLU;
max-pools pad the same way. Random weights: it is for timing, not for logits.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from i3d.model.network import INCEPTION_CHANNELS, MAX_POOLS

STAGES = ("Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d",
          "Mixed_4e", "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """TensorFlow's SAME padding (before, after) of one dimension."""
  total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
  """Pad (N, C, T, H, W) with zeros as TensorFlow's SAME would."""
  pads = []
  for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride))):
    pads += same_padding(size, k, s)
  return F.pad(x, pads)


class Unit3D(nn.Module):
  """SAME pad, Conv3d, BatchNorm3d (eps 1e-3), ReLU."""

  def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1):
    super().__init__()
    self.kernel, self.stride = (kernel,) * 3, (stride,) * 3
    self.conv = nn.Conv3d(cin, cout, kernel, stride, bias=False)
    self.bn = nn.BatchNorm3d(cout, eps=1e-3)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return F.relu(self.bn(self.conv(pad_same(x, self.kernel, self.stride))))


class MaxPool(nn.Module):
  """SAME pad (zeros: inputs are ReLU outputs), then max-pool."""

  def __init__(self, window, stride):
    super().__init__()
    self.window, self.stride = tuple(window), tuple(stride)
    self.pool = nn.MaxPool3d(self.window, self.stride)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.pool(pad_same(x, self.window, self.stride))


class Inception(nn.Module):
  """Four branches concatenated along channels."""

  def __init__(self, cin: int, channels):
    super().__init__()
    b0, b1a, b1b, b2a, b2b, b3 = channels
    self.b0 = Unit3D(cin, b0)
    self.b1 = nn.Sequential(Unit3D(cin, b1a), Unit3D(b1a, b1b, 3))
    self.b2 = nn.Sequential(Unit3D(cin, b2a), Unit3D(b2a, b2b, 3))
    self.b3 = nn.Sequential(MaxPool((3, 3, 3), (1, 1, 1)), Unit3D(cin, b3))
    self.out_channels = b0 + b1b + b2b + b3

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([self.b0(x), self.b1(x), self.b2(x), self.b3(x)], dim=1)


class TorchI3d(nn.Module):
  """I3D on (N, C, T, H, W) clips -> time-averaged logits (N, num_classes)."""

  def __init__(self, in_channels: int = 3, num_classes: int = 400):
    super().__init__()
    layers = [Unit3D(in_channels, 64, 7, 2), MaxPool(*MAX_POOLS["MaxPool3d_2a_3x3"]),
              Unit3D(64, 64), Unit3D(64, 192, 3), MaxPool(*MAX_POOLS["MaxPool3d_3a_3x3"])]
    channels = 192
    for stage in STAGES:
      if stage in MAX_POOLS:
        layers.append(MaxPool(*MAX_POOLS[stage]))
        continue
      layers.append(Inception(channels, INCEPTION_CHANNELS[stage]))
      channels = layers[-1].out_channels
    self.features = nn.Sequential(*layers)
    self.pool = nn.AvgPool3d((2, 7, 7), stride=1)
    self.logits = nn.Conv3d(channels, num_classes, 1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    logits = self.logits(self.pool(self.features(x)))
    return logits.squeeze(4).squeeze(3).mean(dim=2)

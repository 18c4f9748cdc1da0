"""An independent I3D forward pass in plain `tf.nn` ops, reading weights straight from a checkpoint.

Written from the paper's architecture table and the released graph, sharing no code with
`i3d.model`, so that agreement between the two is evidence rather than tautology.
"""

import numpy as np
import tensorflow as tf

EPS = 1e-3
BLOCKS = [  # name, b0, b1 (1x1, 3x3), b2 (1x1, 3x3), b3; None marks a max-pool stage
    ("Mixed_3b", 64, 96, 128, 16, 32, 32), ("Mixed_3c", 128, 128, 192, 32, 96, 64), None,
    ("Mixed_4b", 192, 96, 208, 16, 48, 64), ("Mixed_4c", 160, 112, 224, 24, 64, 64),
    ("Mixed_4d", 128, 128, 256, 24, 64, 64), ("Mixed_4e", 112, 144, 288, 32, 64, 64),
    ("Mixed_4f", 256, 160, 320, 32, 128, 128), None,
    ("Mixed_5b", 256, 160, 320, 32, 128, 128), ("Mixed_5c", 384, 192, 384, 48, 128, 128),
]


def reference_endpoint(prefix: str, clips: np.ndarray, endpoint: str) -> np.ndarray:
  """Output of `endpoint` (a stem unit, pool or Mixed block; not the logits) of the I3D at
  checkpoint `prefix`: (B, T', H', W', C)."""
  for name, x in _layers(prefix, clips):
    if name == endpoint:
      return x.numpy()
  raise ValueError(f"the reference has no endpoint {endpoint!r}")


def reference_logits(prefix: str, clips: np.ndarray) -> np.ndarray:
  """Time-averaged logits (B, classes) of the I3D stored at checkpoint `prefix`."""
  *_, (_, x) = _layers(prefix, clips)
  return x.numpy()


def reference_layers(prefix: str, clips: np.ndarray, weights: dict | None = None):
  """(endpoint name, output tensor) of every layer in order, the logits last, computed lazily.
  `weights` maps names below the tower (`Conv3d_1a_7x7/conv_3d/w`) to tensors used instead of
  the checkpoint's values (to take gradients with respect to them)."""
  return _layers(prefix, clips, weights or {})


def _layers(prefix: str, clips: np.ndarray, weights: dict | None = None):
  """(endpoint name, output) of every layer in order, the logits last."""
  reader = tf.train.load_checkpoint(prefix)
  names = reader.get_variable_to_shape_map()
  scope = next(n for n in names if n.endswith("Conv3d_1a_7x7/conv_3d/w"))[:-23]
  weights = weights or {}

  def get(name):
    return weights[name] if name in weights else tf.constant(reader.get_tensor(scope + name))

  def unit(x, name, stride=1, bn=True):
    x = tf.nn.conv3d(x, get(name + "/conv_3d/w"), [1, stride, stride, stride, 1], "SAME")
    if not bn:
      return x + get(name + "/conv_3d/b")
    flat = lambda v: tf.reshape(get(f"{name}/batch_norm/{v}"), [-1])
    x = (x - flat("moving_mean")) / tf.sqrt(flat("moving_variance") + EPS) + flat("beta")
    return tf.nn.relu(x)

  x = tf.constant(clips, tf.float32)
  x = unit(x, "Conv3d_1a_7x7", stride=2)
  yield "Conv3d_1a_7x7", x
  x = tf.nn.max_pool3d(x, [1, 1, 3, 3, 1], [1, 1, 2, 2, 1], "SAME")
  yield "MaxPool3d_2a_3x3", x
  x = unit(x, "Conv3d_2b_1x1")
  yield "Conv3d_2b_1x1", x
  x = unit(x, "Conv3d_2c_3x3")
  yield "Conv3d_2c_3x3", x
  x = tf.nn.max_pool3d(x, [1, 1, 3, 3, 1], [1, 1, 2, 2, 1], "SAME")
  yield "MaxPool3d_3a_3x3", x
  pools = iter([("MaxPool3d_4a_3x3", [1, 3, 3, 3, 1], [1, 2, 2, 2, 1]),
                ("MaxPool3d_5a_2x2", [1, 2, 2, 2, 1], [1, 2, 2, 2, 1])])
  for block in BLOCKS:
    if block is None:
      pool, window, strides = next(pools)
      x = tf.nn.max_pool3d(x, window, strides, "SAME")
      yield pool, x
      continue
    name = block[0]
    b2b = "Conv3d_0a_3x3" if name == "Mixed_5b" else "Conv3d_0b_3x3"
    x = tf.concat([
        unit(x, f"{name}/Branch_0/Conv3d_0a_1x1"),
        unit(unit(x, f"{name}/Branch_1/Conv3d_0a_1x1"), f"{name}/Branch_1/Conv3d_0b_3x3"),
        unit(unit(x, f"{name}/Branch_2/Conv3d_0a_1x1"), f"{name}/Branch_2/{b2b}"),
        unit(tf.nn.max_pool3d(x, [1, 3, 3, 3, 1], [1, 1, 1, 1, 1], "SAME"),
             f"{name}/Branch_3/Conv3d_0b_1x1"),
    ], axis=-1)
    yield name, x
  x = tf.nn.avg_pool3d(x, [1, 2, 7, 7, 1], [1, 1, 1, 1, 1], "VALID")
  x = unit(x, "Logits/Conv3d_0c_1x1", bn=False)
  yield "Logits", tf.reduce_mean(x[:, :, 0, 0, :], axis=1)

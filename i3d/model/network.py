"""The Inception-v1 Inflated 3D ConvNet (I3D) of Carreira & Zisserman, CVPR 2017, in Sonnet 2.

Architecture, endpoint names and variable names follow the released `i3d.py` (Sonnet 1), so the
released checkpoints load by name: `inception_i3d/Mixed_3b/Branch_1/Conv3d_0b_3x3/conv_3d/w`.
"""

from collections.abc import Callable, Sequence
from typing import Optional

import sonnet as snt
import tensorflow as tf

from i3d.model.streams import MIN_FRAMES, VALID_ENDPOINTS, InputSpec

# Output channels of each Inception block: Branch_0 1x1; Branch_1 1x1 -> 3x3; Branch_2 1x1 -> 3x3;
# Branch_3 max-pool -> 1x1.
INCEPTION_CHANNELS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

# (window, strides) in (T, H, W) of the stem and between-stage max-pools, SAME padding.
MAX_POOLS = {
    "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}


class BatchNorm(snt.Module):
  """Sonnet 1's BatchNorm as the released model used it: offset only, no scale, eps 1e-3.

  Inference normalises with the moving statistics; training normalises with the batch
  statistics and moves the averages towards them with `decay_rate`. Variables are named
  `beta`, `moving_mean` and `moving_variance`, shaped (C,), as in the released checkpoints.
  Under a `tf.distribute` strategy of several replicas the batch statistics are those of the
  global batch (all-reduced), so every replica normalises and updates alike. Inputs of a lower
  precision (bfloat16) are normalised in it; batch statistics and variables stay float32.
  """

  def __init__(self, eps: float = 1e-3, decay_rate: float = 0.999, name: str = "batch_norm"):
    super().__init__(name=name)
    self.eps = eps
    self.decay_rate = decay_rate

  @snt.once
  def _initialize(self, channels: int) -> None:
    self.beta = tf.Variable(tf.zeros([channels]), name="beta")
    self.moving_mean = tf.Variable(tf.zeros([channels]), name="moving_mean", trainable=False)
    self.moving_variance = tf.Variable(tf.ones([channels]), name="moving_variance",
                                       trainable=False)

  def __call__(self, inputs: tf.Tensor, is_training: bool) -> tf.Tensor:
    self._initialize(inputs.shape[-1])
    if is_training:
      mean, variance = batch_moments(tf.cast(inputs, tf.float32))
      self.moving_mean.assign_sub((self.moving_mean - mean) * (1.0 - self.decay_rate))
      self.moving_variance.assign_sub((self.moving_variance - variance) * (1.0 - self.decay_rate))
    else:
      mean, variance = self.moving_mean, self.moving_variance
    dtype = inputs.dtype  # float32; bfloat16 in mixed-precision training (statistics float32)
    return tf.nn.batch_normalization(inputs, tf.cast(mean, dtype), tf.cast(variance, dtype),
                                     offset=tf.cast(self.beta, dtype), scale=None,
                                     variance_epsilon=self.eps)


def batch_moments(inputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Mean and variance per channel of `inputs` (..., C); in a replica context of several
  replicas (equal batches each), those of the global batch: the mean all-reduced first, then the
  mean squared deviation from it (as `tf.nn.moments`; E[x^2] - E[x]^2 cancels badly when the mean
  is large against the spread)."""
  axes = list(range(inputs.shape.rank - 1))
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return tf.nn.moments(inputs, axes=axes)
  mean = context.all_reduce("mean", tf.reduce_mean(inputs, axes))
  deviation = tf.math.squared_difference(inputs, tf.stop_gradient(mean))
  return mean, context.all_reduce("mean", tf.reduce_mean(deviation, axes))


class Unit3D(snt.Module):
  """Basic unit: 3D convolution (SAME padding), then optional BatchNorm and activation."""

  def __init__(self,
               output_channels: int,
               kernel_shape: Sequence[int] = (1, 1, 1),
               stride: Sequence[int] = (1, 1, 1),
               activation_fn: Optional[Callable[[tf.Tensor], tf.Tensor]] = tf.nn.relu,
               use_batch_norm: bool = True,
               use_bias: bool = False,
               name: str = "unit_3d"):
    super().__init__(name=name)
    self.output_channels = output_channels
    self.stride = tuple(stride)
    self.activation_fn = activation_fn
    self.conv = snt.Conv3D(output_channels, kernel_shape=tuple(kernel_shape),
                           stride=tuple(stride), padding="SAME", with_bias=use_bias,
                           name="conv_3d")
    self.bn = BatchNorm() if use_batch_norm else None

  def __call__(self, inputs: tf.Tensor, is_training: bool) -> tf.Tensor:
    net = self._convolve(inputs)
    if self.bn is not None:
      net = self.bn(net, is_training=is_training)
    if self.activation_fn is not None:
      net = self.activation_fn(net)
    return net

  def _convolve(self, inputs: tf.Tensor) -> tf.Tensor:
    """The convolution in the precision of `inputs`: float32 as `snt.Conv3D` computes it; a
    lower one (bfloat16 training) from the float32 weights cast on read."""
    if inputs.dtype == tf.float32 or not hasattr(self.conv, "w"):
      return self.conv(inputs)
    net = tf.nn.conv3d(inputs, tf.cast(self.conv.w, inputs.dtype), (1, *self.stride, 1), "SAME")
    return tf.nn.bias_add(net, tf.cast(self.conv.b, inputs.dtype)) if self.conv.with_bias else net


class MaxPool3D(snt.Module):
  """A max-pool over (T, H, W) with SAME padding; no weights."""

  def __init__(self, window: Sequence[int], strides: Sequence[int], name: str = "max_pool_3d"):
    super().__init__(name=name)
    self.window = tuple(window)
    self.strides = tuple(strides)

  def __call__(self, inputs: tf.Tensor, is_training: bool = False) -> tf.Tensor:
    del is_training  # pooling is the same in training and inference
    return tf.nn.max_pool3d(inputs, ksize=self.window, strides=self.strides, padding="SAME")


class InceptionBlock(snt.Module):
  """One `Mixed_*` block: four parallel branches concatenated along channels."""

  def __init__(self, channels: Sequence[int], name: str):
    super().__init__(name=name)
    b0, b1a, b1b, b2a, b2b, b3 = channels
    # The released Mixed_5b names its Branch_2 3x3 convolution `Conv3d_0a_3x3`; keep it.
    b2b_name = "Conv3d_0a_3x3" if name == "Mixed_5b" else "Conv3d_0b_3x3"
    with tf.name_scope("Branch_0"):
      self.branch_0 = Unit3D(b0, name="Conv3d_0a_1x1")
    with tf.name_scope("Branch_1"):
      self.branch_1 = (Unit3D(b1a, name="Conv3d_0a_1x1"),
                       Unit3D(b1b, kernel_shape=(3, 3, 3), name="Conv3d_0b_3x3"))
    with tf.name_scope("Branch_2"):
      self.branch_2 = (Unit3D(b2a, name="Conv3d_0a_1x1"),
                       Unit3D(b2b, kernel_shape=(3, 3, 3), name=b2b_name))
    with tf.name_scope("Branch_3"):
      self.pool = MaxPool3D((3, 3, 3), (1, 1, 1))
      self.branch_3 = Unit3D(b3, name="Conv3d_0b_1x1")

  def __call__(self, inputs: tf.Tensor, is_training: bool) -> tf.Tensor:
    branch_0 = self.branch_0(inputs, is_training)
    branch_1 = self.branch_1[1](self.branch_1[0](inputs, is_training), is_training)
    branch_2 = self.branch_2[1](self.branch_2[0](inputs, is_training), is_training)
    branch_3 = self.branch_3(self.pool(inputs), is_training)
    return tf.concat([branch_0, branch_1, branch_2, branch_3], axis=4)


def pool_space(net: tf.Tensor) -> tf.Tensor:
  """Mixed_5c (B, T, 7, 7, C) averaged over space, (B, T, 1, 1, C): the spatial half of the
  head's 2x7x7 pool, taken per chunk when a long clip runs in chunks (`i3d.model.chunks`)."""
  return tf.nn.avg_pool3d(net, ksize=(1, 7, 7), strides=1, padding="VALID")


def endpoint_range(endpoints: Sequence[str], after: Optional[str],
                   until: Optional[str]) -> tuple[int, int]:
  """The indices [first, last) of the layers after endpoint `after` (from the input when None)
  up to endpoint `until` (to the end when None) in a model's `endpoints`."""
  first = endpoints.index(after) + 1 if after is not None else 0
  return first, endpoints.index(until) + 1 if until is not None else len(endpoints)


def logits_head(net: tf.Tensor, classify: Callable[[tf.Tensor], tf.Tensor],
                spatial_squeeze: bool = True, dropout_keep_prob: float = 1.0,
                space_pooled: bool = False, dropout_seed: Optional[tf.Tensor] = None
                ) -> tf.Tensor:
  """I3D's head over Mixed_5c: average-pool 2x7x7 (VALID), dropout (as released: whenever
  keep_prob < 1; evaluation passes 1.0), `classify` (the 1x1x1 convolution to classes), the
  spatial squeeze, then the average over time. `space_pooled`: `net` is already `pool_space`d,
  so only pairs of steps are averaged (the same values to float32 round-off). `dropout_seed`
  (shape [2] integers) makes the dropout mask a function of the seed (training that resumes)."""
  window = (2, 1, 1) if space_pooled else (2, 7, 7)
  net = tf.nn.avg_pool3d(net, ksize=window, strides=1, padding="VALID")
  if not isinstance(dropout_keep_prob, (int, float)) or dropout_keep_prob < 1.0:
    rate = 1.0 - dropout_keep_prob
    net = (tf.nn.dropout(net, rate=rate) if dropout_seed is None
           else tf.nn.experimental.stateless_dropout(net, rate=rate, seed=dropout_seed))
  logits = classify(net)
  if spatial_squeeze:
    logits = tf.squeeze(logits, axis=(2, 3), name="SpatialSqueeze")
  return tf.reduce_mean(logits, axis=1)


class InceptionI3d(snt.Module):
  """Inception-v1 I3D, as in "Quo Vadis, Action Recognition?" (Carreira & Zisserman, 2017).

  Call it on clips of shape (B, T, H, W, C) (C = 3 for RGB, 2 for optical flow) to get
  `(output of final_endpoint, end_points)`; `end_points` maps each endpoint computed to its
  output. The `Logits` endpoint is averaged over time, (B, num_classes) with `spatial_squeeze`.
  """

  VALID_ENDPOINTS = VALID_ENDPOINTS

  def __init__(self,
               num_classes: int = 400,
               spatial_squeeze: bool = True,
               final_endpoint: str = "Logits",
               name: str = "inception_i3d"):
    if final_endpoint not in VALID_ENDPOINTS:
      raise ValueError(f"Unknown final endpoint {final_endpoint!r}; "
                       f"expected one of {', '.join(VALID_ENDPOINTS)}")
    super().__init__(name=name)
    self.num_classes = num_classes
    self.spatial_squeeze = spatial_squeeze
    self.final_endpoint = final_endpoint
    self.endpoints = VALID_ENDPOINTS[:VALID_ENDPOINTS.index(final_endpoint) + 1]
    # The module computing each endpoint from the one before (Logits: its 1x1x1 convolution).
    self.layers = {e: self._make_layer(e) for e in self.endpoints if e != "Predictions"}

  @property
  def units(self) -> dict[str, snt.Module]:
    """The layers with weights, by endpoint."""
    return {e: layer for e, layer in self.layers.items() if not isinstance(layer, MaxPool3D)}

  def _make_layer(self, endpoint: str) -> snt.Module:
    """The module behind `endpoint`."""
    if endpoint in MAX_POOLS:
      return MaxPool3D(*MAX_POOLS[endpoint], name=endpoint)
    if endpoint == "Conv3d_1a_7x7":
      return Unit3D(64, kernel_shape=(7, 7, 7), stride=(2, 2, 2), name=endpoint)
    if endpoint == "Conv3d_2b_1x1":
      return Unit3D(64, name=endpoint)
    if endpoint == "Conv3d_2c_3x3":
      return Unit3D(192, kernel_shape=(3, 3, 3), name=endpoint)
    if endpoint in INCEPTION_CHANNELS:
      return InceptionBlock(INCEPTION_CHANNELS[endpoint], name=endpoint)
    with tf.name_scope("Logits"):
      return Unit3D(self.num_classes, activation_fn=None, use_batch_norm=False,
                    use_bias=True, name="Conv3d_0c_1x1")

  def __call__(self, inputs: tf.Tensor, is_training: bool, dropout_keep_prob: float = 1.0):
    inputs = tf.convert_to_tensor(inputs, dtype=tf.float32)
    self._check_input(inputs)
    end_points = {}
    net = inputs
    for endpoint in self.endpoints:
      if endpoint == "Logits":
        net = self.logits(net, is_training, dropout_keep_prob)
      elif endpoint == "Predictions":
        net = tf.nn.softmax(net)
      else:
        net = self.layers[endpoint](net, is_training)
      end_points[endpoint] = net
    return net, end_points

  def backbone(self, net: tf.Tensor, after: Optional[str] = None, until: str = "Mixed_5c"
               ) -> tf.Tensor:
    """The layers (in inference) after endpoint `after` (`net` is its output; None: the
    clips) up to endpoint `until`."""
    layers = [e for e in self.endpoints if e not in ("Logits", "Predictions")]
    first, last = endpoint_range(layers, after, until)
    for endpoint in layers[first:last]:
      net = self.layers[endpoint](net, is_training=False)
    return net

  def create_variables(self, channels: int) -> None:
    """Make the weights now rather than on the first call, via a 1x1x1 pass through each unit."""
    if self.input_channels is not None:
      return
    net = tf.zeros([1, 1, 1, 1, channels])
    for unit in self.units.values():  # pools keep channel counts, so they can be skipped
      net = unit(net, is_training=False)

  @property
  def input_channels(self) -> Optional[int]:
    """Channels the model's weights were made for, or None before its first call."""
    stem = self.units["Conv3d_1a_7x7"].conv
    return stem.w.shape[3] if hasattr(stem, "w") else None

  def logits(self, net: tf.Tensor, is_training: bool = False, dropout_keep_prob: float = 1.0,
             space_pooled: bool = False, dropout_seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The released head over Mixed_5c (`logits_head`; `space_pooled` and `dropout_seed` as
    there), its convolution the `Logits` unit."""
    return logits_head(net, lambda x: self.units["Logits"](x, is_training),
                       self.spatial_squeeze, dropout_keep_prob, space_pooled, dropout_seed)

  def _check_input(self, inputs: tf.Tensor) -> None:
    """An `InputError` (a ValueError) saying what was expected (`InputSpec`), instead of a shape
    error deep in the graph."""
    shape = inputs.shape
    logits = "Logits" in self.endpoints
    InputSpec(self.input_channels, None, logits, self.spatial_squeeze,
              MIN_FRAMES if logits else 1).check_shape(
                  shape.as_list() if shape.rank is not None else (), "I3D input")

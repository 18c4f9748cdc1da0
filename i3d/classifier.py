"""The ready-to-use inference model: one or two I3D towers with restored weights, fused logits.

Every command (`evaluate_sample.py`, `i3d predict`, `i3d evaluate`, `i3d export`) classifies
through `load_classifier`, so this is the one place inference is made fast.
"""

import os
from typing import Optional

import tensorflow as tf

from i3d.checkpoints import get_info, load_checkpoint
from i3d.errors import UserError
from i3d.labels import load_label_map
from i3d.model import InceptionI3d

STREAM_CHANNELS = {"rgb": 3, "flow": 2}
EVAL_TYPES = ("rgb", "rgb600", "flow", "joint")


def checkpoint_names(eval_type: str, imagenet_pretrained: bool = True) -> dict[str, str]:
  """Released checkpoint per stream for an eval type, as the released evaluate_sample.py chose."""
  if eval_type not in EVAL_TYPES:
    raise UserError(f"unknown eval type {eval_type!r}; expected one of {', '.join(EVAL_TYPES)}")
  if eval_type == "rgb600":
    return {"rgb": "rgb_scratch_kin600"}
  suffix = "imagenet" if imagenet_pretrained else "scratch"
  streams = ("rgb", "flow") if eval_type == "joint" else (eval_type,)
  return {stream: f"{stream}_{suffix}" for stream in streams}


class Classifier(tf.Module):
  """Sums the logits of its streams (RGB, flow or both) over (B, T, 224, 224, C) clips in [-1, 1].

  `labels` are the class names in logit order; `streams` says which inputs it takes. A
  `tf.Module`, so its weights are tracked and it can be saved (see `i3d.export`).
  """

  def __init__(self, models: dict[str, InceptionI3d], labels: tuple[str, ...]):
    super().__init__(name="classifier")
    self.models = models
    self.labels = labels
    self.streams = tuple(models)
    self.num_classes = len(labels)
    self._towers = {stream: self._compile(stream) for stream in self.streams}

  def _compile(self, stream: str):
    model = self.models[stream]
    spec = tf.TensorSpec([None, None, None, None, STREAM_CHANNELS[stream]], tf.float32)

    @tf.function(input_signature=[spec], autograph=False)
    def logits(clips):
      return model(clips, is_training=False)[0]
    return logits

  def stream_logits(self, rgb=None, flow=None) -> dict[str, tf.Tensor]:
    """Logits of each stream, (B, num_classes) each."""
    inputs = {"rgb": rgb, "flow": flow}
    extra = [s for s, x in inputs.items() if x is not None and s not in self.streams]
    missing = [s for s in self.streams if inputs[s] is None]
    if missing or extra:
      raise UserError(f"this classifier takes {' and '.join(f'{s}=' for s in self.streams)}; "
                      f"missing {missing or 'nothing'}, unexpected {extra or 'nothing'}")
    return {s: self._towers[s](tf.convert_to_tensor(inputs[s], tf.float32))
            for s in self.streams}

  def __call__(self, rgb=None, flow=None) -> tf.Tensor:
    """Fused logits: the sum over streams, as the released joint model."""
    return tf.add_n(list(self.stream_logits(rgb=rgb, flow=flow).values()))


def load_classifier(eval_type: str = "joint",
                    checkpoint_dir: Optional[os.PathLike] = None,
                    imagenet_pretrained: bool = True,
                    download: bool = True) -> Classifier:
  """Build the towers of `eval_type` (rgb, rgb600, flow, joint) and restore released weights.

  Checkpoints come from `checkpoint_dir` (default `$I3D_CHECKPOINT_DIR` or `checkpoints/`) and
  are downloaded there on first use unless `download` is False.
  """
  names = checkpoint_names(eval_type, imagenet_pretrained)
  models = {}
  for stream, name in names.items():
    info = get_info(name)
    with tf.name_scope("RGB" if stream == "rgb" else "Flow"):
      model = InceptionI3d(info.num_classes, spatial_squeeze=True, final_endpoint="Logits")
    load_checkpoint(model, name, checkpoint_dir=checkpoint_dir, download=download)
    models[stream] = model
  label_map = get_info(next(iter(names.values()))).label_map
  return Classifier(models, load_label_map(label_map))

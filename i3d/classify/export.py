"""Export a classifier as a self-contained TF SavedModel (loadable without this package)."""

import os

import tensorflow as tf

from i3d.classify.classifier import Classifier
from i3d.model.streams import INPUT_SIZE, STREAM_CHANNELS


def serving_module(classifier: Classifier) -> tf.Module:
  """A module whose `serve` takes the classifier's streams as float32 (B, T, 224, 224, C)."""
  module = tf.Module()
  module.towers = dict(classifier.towers)  # only the weights inference reads, not both copies
  specs = {s: tf.TensorSpec([None, None, INPUT_SIZE, INPUT_SIZE, STREAM_CHANNELS[s]],
                           tf.float32, name=s)
           for s in classifier.streams}

  @tf.function(input_signature=[specs], autograph=False)
  def serve(inputs):
    logits = classifier(**inputs)
    return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

  module.serve = serve
  return module


def export_saved_model(classifier: Classifier, output_dir: os.PathLike) -> None:
  """Write a SavedModel whose `serving_default` maps rgb/flow clips to logits, probabilities."""
  module = serving_module(classifier)
  signature = module.serve.get_concrete_function()
  tf.saved_model.save(module, str(output_dir), signatures={"serving_default": signature})
  with open(os.path.join(output_dir, "labels.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(classifier.labels) + "\n")

"""I3D: the Inflated 3D ConvNet of Carreira & Zisserman (CVPR 2017) in TensorFlow 2 / Sonnet 2."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, CPU features) buries our one-line errors;
# users who want it set TF_CPP_MIN_LOG_LEVEL themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=wrong-import-position

from i3d.checkpoints import CHECKPOINTS, CheckpointInfo, fetch_checkpoint, load_checkpoint
from i3d.classifier import EVAL_TYPES, Classifier, checkpoint_names, load_classifier
from i3d.errors import CheckpointError, DownloadError, UserError
from i3d.labels import class_index, class_name, load_label_map
from i3d.model import VALID_ENDPOINTS, BatchNorm, InceptionI3d, Unit3D

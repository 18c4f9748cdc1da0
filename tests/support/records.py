"""Small MediaSequence shards of test videos."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from i3d.inputs import records
from i3d.inputs.settings import InputSettings
from i3d.model.streams import STREAMS


def write_records(shard: Path, videos: dict[str, Path], settings: InputSettings,
                  streams: tuple[str, ...] = STREAMS) -> Path:
  """A shard (compressed as its name says) holding one record per video {key: path}."""
  shard.parent.mkdir(parents=True, exist_ok=True)
  return records.write_shard(shard, [
      records.encode_clip(video, records.ClipInfo(key), settings, streams=streams)
      .SerializeToString() for key, video in videos.items()])


def stored_rgb(shard) -> list[np.ndarray]:
  """The RGB frames of every record of a shard: plain TensorFlow, the documented key."""
  clips = []
  for record in tf.data.TFRecordDataset(str(shard), compression_type="GZIP"):
    _, lists = tf.io.parse_single_sequence_example(
        record, sequence_features={"image/encoded": tf.io.FixedLenSequenceFeature([], tf.string)})
    clips.append(np.stack([tf.io.decode_jpeg(j, dct_method="INTEGER_ACCURATE").numpy()
                           for j in lists["image/encoded"]]))
  return clips


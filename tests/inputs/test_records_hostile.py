"""Records that would exhaust memory or fail late: JPEG sizes and frame counts are checked from
the headers before anything is decoded, for every reader (issue 23, item 6)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from i3d.errors import UserError
from i3d.inputs import records
from i3d.inputs.settings import InputSettings
from i3d.inputs.views import ViewProtocol
from i3d.model.streams import STREAMS

RNG = np.random.default_rng(0)


def example(frames: np.ndarray, fields: np.ndarray | None = None,
            key: str = "clip_a") -> tf.train.SequenceExample:
  streams = ("rgb",) if fields is None else STREAMS
  return records.clip_example(frames, fields, records.ClipInfo(key),
                              records.settings_record(InputSettings(), streams=streams))


def frames(count: int, height: int = 256, width: int = 288) -> np.ndarray:
  return RNG.integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def claim_size(jpeg: bytes, height: int, width: int) -> bytes:
  """`jpeg` with its baseline frame header (SOF0) claiming `height` x `width`."""
  at = jpeg.index(b"\xff\xc0") + 5
  return jpeg[:at] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[at + 4:]


def shard(tmp_path, *examples) -> str:
  return str(records.write_shard(tmp_path / "c-00000-of-00001.tfrecord",
                                 [e.SerializeToString() for e in examples]))


def set_context(record: tf.train.SequenceExample, key: str, value: int) -> None:
  record.context.feature[key].int64_list.value[:] = [value]


def test_a_well_formed_record_passes(tmp_path):
  assert records.check_shard(shard(tmp_path, example(frames(2))), ("rgb",)) == 1


def test_a_jpeg_header_claiming_a_huge_frame_is_refused_before_decoding(tmp_path):
  record = example(frames(2))
  jpegs = record.feature_lists.feature_list[records.ENCODED].feature
  jpegs[1].bytes_list.value[0] = claim_size(jpegs[1].bytes_list.value[0], 13000, 13000)
  path = shard(tmp_path, record)
  with pytest.raises(UserError, match=r"c-00000-of-00001.tfrecord: .*record clip_a: rgb JPEGs "
                                      r"of another size than image/height x image/width"):
    records.check_shard(path, ("rgb",))
  set_context(record, records.HEIGHT, 13000)
  set_context(record, records.WIDTH, 13000)
  with pytest.raises(UserError, match="shorter side of 256 .13000x13000"):
    records.check_shard(shard(tmp_path, record), ("rgb",))


def test_tiny_frames_and_too_many_frames_are_refused_naming_shard_and_clip(tmp_path, monkeypatch):
  with pytest.raises(UserError, match=r"record clip_a: .*shorter side of 256 \(1x1"):
    records.check_shard(shard(tmp_path, example(frames(2, 1, 1))), ("rgb",))
  monkeypatch.setenv("I3D_MAX_FRAMES", "2")
  path = shard(tmp_path, example(frames(3)))
  with pytest.raises(UserError, match=r"more than 2 rgb frames \(\$I3D_MAX_FRAMES\)"):
    records.check_shard(path, ("rgb",))
  # The readers behind predict, evaluate and features report it, naming the shard.
  [(key, reason)] = list(records.read_listed({"clip_a": path}, ("rgb",), ViewProtocol(crops=1)))
  assert key == "clip_a" and reason.startswith(path) and "more than 2 rgb frames" in reason


def test_flow_images_of_another_size_than_the_frames_are_refused(tmp_path):
  record = example(frames(2), np.zeros((2, 256, 288, 2), np.float32))
  small = example(frames(2, 256, 256), np.zeros((2, 256, 256, 2), np.float32))
  flow = records.FLOW_PREFIX + records.ENCODED
  record.feature_lists.feature_list[flow].CopyFrom(small.feature_lists.feature_list[flow])
  with pytest.raises(UserError, match="flow JPEGs of another size"):
    records.check_shard(shard(tmp_path, record))


@pytest.mark.parametrize("field, value, problem", [
    (records.SETTINGS, b"not json", "is not UTF-8 JSON text"),
    (records.SETTINGS, b"[1, 2]", "record clip_a: i3d/settings is not a JSON object"),
    (records.EXAMPLE_ID, b"\xff\xfe", "is not UTF-8 JSON text"),
    (records.LABEL_STRING, b"\xff", "is not UTF-8 JSON text"),
])
def test_damaged_context_fields_are_a_read_error_naming_the_shard(tmp_path, field, value,
                                                                  problem):
  record = example(frames(2))
  record.context.feature[field].bytes_list.value[:] = [value]
  path = shard(tmp_path, record)
  [item] = list(records.read_clips([path], ("rgb",), protocol=None))
  assert isinstance(item, records.ReadError)
  assert item.message.startswith(path) and problem in item.message


class FullDiskWriter:
  """A TFRecordWriter on a full disk: TensorFlow's ResourceExhaustedError on write."""

  def __init__(self, path, options=None):
    open(path, "wb").close()

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    return False

  def write(self, record):
    raise tf.errors.ResourceExhaustedError(None, None, "shard: No space left on device")


def test_a_full_disk_while_a_shard_is_written_is_one_line(tmp_path, monkeypatch):
  from i3d._util.files import environmental
  monkeypatch.setattr(tf.io, "TFRecordWriter", FullDiskWriter)
  path = tmp_path / "c-00000-of-00001.tfrecord"
  with pytest.raises(UserError, match=r"c-00000-of-00001.tfrecord: cannot write the shard "
                                      r"\(shard: No space left on device\)") as error:
    records.write_shard(path, [b"x"])
  assert environmental(error.value) and not list(tmp_path.iterdir())


def test_a_folder_or_a_pipe_named_like_a_shard_is_a_read_error(tmp_path):
  (tmp_path / "d-00000-of-00002.tfrecord").mkdir()
  os.mkfifo(tmp_path / "d-00001-of-00002.tfrecord")
  problems = [item.message for item in records.read_clips(records.list_shards(tmp_path), ("rgb",))]
  assert [p.split(": ", 1)[1] for p in problems] == [
      "a folder, not a regular file; give a file", "a named pipe, not a regular file; give a file"]

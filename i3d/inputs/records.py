"""Preprocessed clips as MediaSequence `tf.train.SequenceExample`s in sharded TFRecord files.

The layout is MediaPipe's MediaSequence, as DeepMind's video readers (DMVR) consume it, so the
records also feed `dmvr.modalities.add_image` (RGB, and flow with `is_flow=True` under
`FORWARD_FLOW/image/encoded`) and `add_label`. One example per clip:

context
  `example/id`            bytes   the clip's key (`{youtube_id}_{start:06d}_{end:06d}`)
  `clip/data_path`        bytes   the video the clip was read from, relative to the video folder
  `clip/media_id`         bytes   the YouTube id
  `clip/start/timestamp`  int64   start of the clip in the media, microseconds
  `clip/end/timestamp`    int64   end of the clip in the media, microseconds
  `clip/label/index`      int64   class index (labelled clips only)
  `clip/label/string`     bytes   class name (MediaSequence's key; labelled clips only)
  `clip/label/text`       bytes   class name (the key DMVR's `add_label` reads; labelled only)
  `image/height`, `image/width`, `image/channels` int64; `image/format` b"JPEG";
  `image/frame_rate` float 25.0; the same four under `FORWARD_FLOW/` for the flow images
  `i3d/settings`          bytes   JSON record of the settings (`settings_record`), checked on read
feature lists
  `image/encoded`         bytes   one JPEG per 25 fps frame, shorter side 256, before any crop
  `image/timestamp`       int64   clip start + i / 25 s, microseconds
  `FORWARD_FLOW/image/encoded`  bytes  TV-L1 flow from frame i to i+1 (the last frame repeats the
                                       last field, as the model input does), clipped to
                                       [-20, 20] px, quantised to 8 bits (x -> round((x + 20) *
                                       255 / 40)): channel 0 horizontal, 1 vertical, 2 zero
  `FORWARD_FLOW/image/timestamp` int64 the timestamp of frame i

Flow decodes as DMVR's `normalize_image(zero_centering_image=True)` does: q * 2 / 255 - 1 is the
flow divided by 20, the released flow input.

Shards are plain TFRecord files, or GZIP-compressed ones named `NAME-00000-of-000NN.tfrecord.gz`
(the suffix by which Beam and `tf.data` users recognise them): readers here open a shard by its
name, so a compressed shard reads wherever it is copied.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import tensorflow as tf

from i3d._util import env, storage, text
from i3d._util.files import check_regular
from i3d.errors import UserError
from i3d.inputs import stream, transforms, views
from i3d.inputs.settings import FLOW_BOUND, FPS, RESIZE_SHORT_SIDE, Encoding, InputSettings
from i3d.model.streams import STREAMS

RECORD_FORMAT = 1
EXAMPLE_ID = "example/id"
DATA_PATH = "clip/data_path"
MEDIA_ID = "clip/media_id"
START = "clip/start/timestamp"
END = "clip/end/timestamp"
LABEL_INDEX = "clip/label/index"
LABEL_STRING = "clip/label/string"
LABEL_TEXT = "clip/label/text"
SETTINGS = "i3d/settings"
FLOW_PREFIX = "FORWARD_FLOW/"
ENCODED, TIMESTAMP = "image/encoded", "image/timestamp"
HEIGHT, WIDTH, CHANNELS = "image/height", "image/width", "image/channels"
FORMAT, FRAME_RATE = "image/format", "image/frame_rate"
# The feature-list prefix of each stream's images.
STREAM_PREFIX = {"rgb": "", "flow": FLOW_PREFIX}
SHARD_SUFFIX = ".tfrecord"
# Shard compression -> (file name suffix after SHARD_SUFFIX, TFRecord compression_type).
COMPRESSIONS = {"none": ("", ""), "gzip": (".gz", "GZIP")}
_SHARD_NAME = re.compile(r"^(?P<name>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord(\.gz)?$")
_MICROSECONDS = 1_000_000
_P = TypeVar("_P", str, Path)


@dataclasses.dataclass(frozen=True)
class ClipInfo:
  """What a record says about its clip besides the images."""
  key: str
  data_path: str = ""
  media_id: str = ""
  start_us: int = 0
  end_us: int = 0
  label: str | None = None
  label_index: int | None = None


def settings_record(settings: InputSettings, encoding: Encoding = Encoding(),
                    streams: Sequence[str] = STREAMS) -> dict:
  """The JSON-able record of everything that changes the stored images; stored in every example
  and in the manifest, and compared on read."""
  return {"format": RECORD_FORMAT, "fps": FPS, "resize": RESIZE_SHORT_SIDE,
          "flow_bound": FLOW_BOUND, "streams": sorted(streams),
          "time_start": settings.time_start, "time_end": settings.time_end,
          "flow_backend": settings.flow_backend if "flow" in streams else None,
          "flow_params": dataclasses.asdict(settings.flow_params) if "flow" in streams else None,
          "encoding": dataclasses.asdict(encoding)}


def quantise_flow(fields: np.ndarray) -> np.ndarray:
  """Flow (..., 2) in pixels -> uint8 (..., 3): clipped to [-20, 20], 256 levels, channel 2 zero."""
  scaled = (np.clip(fields, -FLOW_BOUND, FLOW_BOUND) + FLOW_BOUND) * (255.0 / (2 * FLOW_BOUND))
  levels = np.rint(scaled).astype(np.uint8)
  return np.concatenate([levels, np.zeros_like(levels[..., :1])], axis=-1)


def flow_from_levels(levels: tf.Tensor) -> tf.Tensor:
  """uint8 flow images (..., 3) -> the released flow input (..., 2) in [-1, 1] (DMVR's decoding)."""
  return tf.cast(levels[..., :2], tf.float32) * (2.0 / 255.0) - 1.0


def _bytes(values: Iterable[bytes]) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(values: Iterable[int]) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _jpegs(images: np.ndarray, quality: int) -> list[bytes]:
  """uint8 (T, H, W, 3) -> one JPEG each, without chroma subsampling."""
  return [tf.io.encode_jpeg(image, quality=quality, chroma_downsampling=False).numpy()
          for image in images]


def clip_example(frames: np.ndarray | tf.Tensor, fields: np.ndarray | None, info: ClipInfo,
                 record: dict, encoding: Encoding = Encoding()) -> tf.train.SequenceExample:
  """One clip as a MediaSequence example.

  Args:
    frames: resized frames (T, H, W, 3) in [0, 255] (`stream.resized`).
    fields: their flow (T, H, W, 2) in pixels (`stream.with_flow`), or None for RGB only.
    info: the clip's identity, timing and label.
    record: `settings_record(...)` of the settings the frames and flow were made with.
    encoding: JPEG qualities.

  Returns:
    The `tf.train.SequenceExample` (serialize it with `.SerializeToString()`).
  """
  if fields is not None and fields.shape[:3] != np.shape(frames)[:3]:
    raise ValueError(f"flow {fields.shape} does not match frames {np.shape(frames)}")
  return _example([stream.Block(0, np.asarray(frames, np.float32), fields)], info, record,
                  encoding)


def _example(blocks: Iterable[stream.Block], info: ClipInfo, record: dict,
             encoding: Encoding) -> tf.train.SequenceExample:
  """The example of a clip's `blocks`, JPEG-encoded a block at a time into one JPEG per frame
  {feature-list prefix: JPEGs}: RGB rounded to uint8, flow quantised (`quantise_flow`)."""
  images: dict[str, list[bytes]] = {}
  height = width = 0
  for block in blocks:
    height, width = block.images.shape[1:3]
    rgb = np.clip(np.rint(block.images), 0, 255).astype(np.uint8)
    images.setdefault("", []).extend(_jpegs(rgb, encoding.rgb_quality))
    if block.fields is not None:
      images.setdefault(FLOW_PREFIX, []).extend(_jpegs(quantise_flow(block.fields),
                                                       encoding.flow_quality))
  count = len(images[""])
  stamps = [info.start_us + round(i * _MICROSECONDS / FPS) for i in range(count)]
  context = {EXAMPLE_ID: _bytes([info.key.encode()]), DATA_PATH: _bytes([info.data_path.encode()]),
             MEDIA_ID: _bytes([info.media_id.encode()]), START: _ints([info.start_us]),
             END: _ints([info.end_us]), SETTINGS: _bytes([json.dumps(record, sort_keys=True)
                                                          .encode()])}
  if info.label is not None:
    context[LABEL_STRING] = context[LABEL_TEXT] = _bytes([info.label.encode()])
    if info.label_index is not None:
      context[LABEL_INDEX] = _ints([info.label_index])
  lists = {}
  for prefix, jpegs in images.items():
    context.update({prefix + HEIGHT: _ints([height]), prefix + WIDTH: _ints([width]),
                    prefix + CHANNELS: _ints([3]), prefix + FORMAT: _bytes([b"JPEG"]),
                    prefix + FRAME_RATE: tf.train.Feature(float_list=tf.train.FloatList(
                        value=[FPS]))})
    lists[prefix + ENCODED] = tf.train.FeatureList(feature=[_bytes([j]) for j in jpegs])
    lists[prefix + TIMESTAMP] = tf.train.FeatureList(feature=[_ints([s]) for s in stamps])
  return tf.train.SequenceExample(context=tf.train.Features(feature=context),
                                  feature_lists=tf.train.FeatureLists(feature_list=lists))


def encode_clip(source: str | Path, info: ClipInfo, settings: InputSettings,
                encoding: Encoding = Encoding(),
                streams: Sequence[str] = STREAMS) -> tf.train.SequenceExample:
  """Decode, resize and (for the flow stream) run TV-L1 on a video: its `clip_example`.

  Frames stream through `i3d.inputs.stream` and are JPEG-encoded a block at a time, so memory
  holds the clip's JPEGs, not its frames. An unreadable video is a `UserError`.
  """
  blocks: Iterable[stream.Block] = stream.resized(source, settings)
  if "flow" in streams:
    blocks = stream.with_flow(blocks, settings)
  return _example(blocks, info, settings_record(settings, encoding, streams), encoding)


def parse_clip(serialized: tf.Tensor | bytes, streams: Sequence[str] = STREAMS) -> dict:
  """A serialized clip example -> {context key: value} plus its decoded images per stream.

  Graph-compatible (use it in `tf.data.Dataset.map`). The result holds the context keys above
  (`example/id`, `i3d/settings`, ...) and, for each of `streams`, "rgb" or "flow": uint8
  (T, H, W, 3) decoded JPEGs (for flow, the 8-bit levels; see `flow_from_levels`). A record of
  another format fails with `tf.errors.InvalidArgumentError`.
  """
  context, jpegs = parse_jpegs(serialized, streams)
  return {**context, **{name: decode_jpegs(j) for name, j in jpegs.items()}}


def parse_jpegs(serialized: tf.Tensor | bytes, streams: Sequence[str] = STREAMS
                ) -> tuple[dict, dict[str, tf.Tensor]]:
  """A serialized clip example -> (its context, {stream: its JPEGs, one a frame}), the JPEGs
  checked (count, sizes) but not decoded, for readers that decode only the frames they use."""
  # The context and sequence feature specs.
  context_spec = {EXAMPLE_ID: tf.io.FixedLenFeature([], tf.string),
                  SETTINGS: tf.io.FixedLenFeature([], tf.string),
                  DATA_PATH: tf.io.FixedLenFeature([], tf.string, default_value=""),
                  MEDIA_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
                  START: tf.io.FixedLenFeature([], tf.int64, default_value=0),
                  END: tf.io.FixedLenFeature([], tf.int64, default_value=0),
                  LABEL_STRING: tf.io.FixedLenFeature([], tf.string, default_value=""),
                  LABEL_INDEX: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
                  HEIGHT: tf.io.FixedLenFeature([], tf.int64),
                  WIDTH: tf.io.FixedLenFeature([], tf.int64)}
  sequence_spec = {STREAM_PREFIX[s] + ENCODED: tf.io.FixedLenSequenceFeature([], tf.string)
                   for s in streams}
  context, lists = tf.io.parse_single_sequence_example(serialized, context_spec, sequence_spec)
  return dict(context), {name: _checked_jpegs(lists[STREAM_PREFIX[name] + ENCODED], context, name)
                         for name in streams}


def decode_jpegs(jpegs: tf.Tensor) -> tf.Tensor:
  """JPEGs (T,) -> uint8 images (T, H, W, 3), decoded as the records were written."""
  return tf.map_fn(
      lambda jpeg: tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE"),
      jpegs, fn_output_signature=tf.uint8)


def _checked_jpegs(jpegs: tf.Tensor, context: dict, stream: str) -> tf.Tensor:
  """`jpegs` once their count and every JPEG header's size are checked, before any is decoded:
  at most `$I3D_MAX_FRAMES` frames, each of the record's `image/height` x `image/width`, whose
  shorter side is the stored 256 and whose aspect ratio is at most `$I3D_MAX_ASPECT_RATIO` (a
  record declaring huge frames or 100,000 of them is refused instead of decoded). A failed check
  is an `InvalidArgumentError` naming the clip."""
  height, width = tf.cast(context[HEIGHT], tf.int32), tf.cast(context[WIDTH], tf.int32)
  shapes = tf.map_fn(lambda jpeg: tf.io.extract_jpeg_shape(jpeg)[:2], jpegs,
                     fn_output_signature=tf.TensorSpec([2], tf.int32))
  max_frames, aspect = env.limit("I3D_MAX_FRAMES"), env.limit("I3D_MAX_ASPECT_RATIO")
  checks = [
      (tf.size(jpegs) <= max_frames, f"more than {max_frames} {stream} frames "
                                     f"($I3D_MAX_FRAMES)"),
      (tf.minimum(height, width) == RESIZE_SHORT_SIDE,
       f"image/height x image/width must have a shorter side of {RESIZE_SHORT_SIDE}"),
      (tf.maximum(height, width) <= RESIZE_SHORT_SIDE * aspect,
       f"frames wider than {aspect}:1 ($I3D_MAX_ASPECT_RATIO)"),
      (tf.reduce_all(tf.equal(shapes, tf.stack([height, width]))),
       f"{stream} JPEGs of another size than image/height x image/width")]
  size = tf.strings.join([tf.strings.as_string(width), "x", tf.strings.as_string(height)])
  with tf.control_dependencies([
      tf.debugging.Assert(ok, [tf.strings.join([
          "record ", context[EXAMPLE_ID], f": {message} (", size, f", {stream}); not a record "
          f"of i3d preprocess, or damaged"])]) for ok, message in checks]):
    return tf.identity(jpegs)


def clip_crops(images: dict[str, np.ndarray], streams: Sequence[str],
               crops: int = 1) -> dict[str, np.ndarray]:
  """Decoded images {stream: uint8 (T, H, W, 3)} -> model inputs {stream: float32 (crops, T, 224,
  224, C)} in [-1, 1], cut by the crop stage of `i3d.inputs.stream` (no looping)."""
  height, width = images[streams[0]].shape[1:3]
  offsets = transforms.crop_offsets(height, width, crops)
  return {name: stream.crop_all(tf.cast(images[name], tf.float32) if name == "rgb"
                                else flow_from_levels(images[name]), name, offsets)
          for name in streams}


def clip_views(images: dict[str, np.ndarray], streams: Sequence[str],
               protocol: views.ViewProtocol = views.ViewProtocol()) -> dict[str, views.ViewArray]:
  """Decoded images {stream: uint8 (T, H, W, 3)} -> model inputs {stream: (views, T', 224,
  224, C)} under `protocol`, cropped and windowed exactly as views of a video are."""
  return views.views_of(clip_crops(images, streams, protocol.crops), protocol)


def info_of(parsed: dict) -> ClipInfo:
  """The `ClipInfo` of a `parse_clip` result (NumPy values, as from `as_numpy_iterator`)."""
  label = parsed[LABEL_STRING].decode() or None
  index = int(parsed[LABEL_INDEX])
  return ClipInfo(parsed[EXAMPLE_ID].decode(), parsed[DATA_PATH].decode(),
                  parsed[MEDIA_ID].decode(), int(parsed[START]), int(parsed[END]), label,
                  index if index >= 0 else None)


def shard_name(name: str, index: int, count: int, compression: str = "none") -> str:
  """`NAME-00003-of-00016.tfrecord`: shard `index` (from 0) of `count`; `.tfrecord.gz` when
  `compression` is "gzip" (see `COMPRESSIONS`)."""
  if compression not in COMPRESSIONS:
    raise UserError(f"unknown shard compression {compression!r}; expected "
                    f"{' or '.join(COMPRESSIONS)}")
  check_shard_prefix(name)
  return f"{name}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}{COMPRESSIONS[compression][0]}"


def check_shard_prefix(name: str) -> None:
  """A `UserError` unless `name` is a shard name prefix that stays in its folder and that the
  readers recognise: not empty, no /, \\ or NUL, no leading dot, at most 200 characters."""
  if not name or len(name) > 200 or re.search(r"[/\\\x00]|^\.", name):
    raise UserError(f"shard name {name!r} is not a safe file name prefix (not empty, no /, \\, "
                    f"NUL or leading dot, at most 200 characters); choose another --name")


def shard_compression(path: str | Path) -> str:
  """The compression of a shard, from its name: "gzip" for `.tfrecord.gz`, else "none"."""
  return "gzip" if str(path).endswith(SHARD_SUFFIX + COMPRESSIONS["gzip"][0]) else "none"


def compression_type(path: str | Path) -> str:
  """The TFRecord `compression_type` that opens the shard `path`."""
  return COMPRESSIONS[shard_compression(path)][1]


def is_shard_name(filename: str) -> bool:
  """Whether `filename` is named as `shard_name` names shards."""
  return _SHARD_NAME.match(filename) is not None


def list_shards(directory: str | Path) -> list[Path]:
  """The shards in `directory` (named as `shard_name` names them), in name order."""
  directory = Path(directory)
  if not directory.is_dir():
    raise UserError(f"{directory}: no such records folder")
  return sorted(p for p in directory.iterdir() if is_shard_name(p.name))


def write_shard(path: _P, serialized: Iterable[bytes]) -> _P:
  """Write records to `path` (local, or anywhere `tf.io.gfile` writes: gs://...) atomically: a
  temporary name beside it (fsynced when local), then renamed, so a file with the shard's name is
  always complete. A `.tfrecord.gz` name is written GZIP-compressed. Returns `path`.
  """
  try:
    with (storage.atomic_path(str(path)) as temporary,
          tf.io.TFRecordWriter(temporary, options=compression_type(path)) as writer):
      for record in serialized:
        writer.write(record)
  except (tf.errors.OpError, OSError) as e:  # a full disk is a ResourceExhaustedError
    reason = tf_message(e) if isinstance(e, tf.errors.OpError) else e.strerror or e
    raise UserError(f"{path}: cannot write the shard ({reason}); free space or fix the folder "
                    f"and run again") from e
  return path


@dataclasses.dataclass(frozen=True)
class RecordClip:
  """One clip read from a shard: where from, what it is, and its model inputs (or, read without a
  protocol, its decoded images {stream: uint8 (T, H, W, 3)}: see `parse_clip`)."""
  shard: str
  info: ClipInfo
  inputs: dict[str, views.ViewArray]


@dataclasses.dataclass(frozen=True)
class ReadError:
  """A record or shard that could not be read (the reader goes on with the next shard)."""
  message: str


def _dataset(paths: Sequence[str], streams: Sequence[str], workers: int) -> tf.data.Dataset:
  """(shard path, parsed clip) for every record, shards interleaved, decoding in parallel."""
  def records(path: tf.Tensor, compression: tf.Tensor) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(path, compression_type=compression).map(lambda r: (path, r))

  compressions = [compression_type(p) for p in paths]
  return (tf.data.Dataset.from_tensor_slices((list(paths), compressions))
          .interleave(records, cycle_length=max(1, workers), num_parallel_calls=max(1, workers),
                      deterministic=True)
          .map(lambda path, r: (path, parse_clip(r, streams)), num_parallel_calls=max(1, workers),
               deterministic=True)
          .prefetch(2))


def read_clips(paths: Sequence[str | Path], streams: Sequence[str],
               protocol: views.ViewProtocol | None = views.ViewProtocol(),
               record: dict | None = None, workers: int = 2) -> Iterator[RecordClip | ReadError]:
  """Every clip of the shards `paths` as model inputs under `protocol`.

  With `protocol` None, each clip's decoded images as stored (uint8, before any crop) instead.
  A corrupt or truncated shard, or an undecodable record, yields a `ReadError` and reading goes
  on (TensorFlow moves to the next shard after a damaged one); so does a shard that does not
  exist. A record made with other settings than `record` (a `settings_record`) is a `UserError`
  naming the shard, as are records that `record` says lack one of `streams`.
  """
  missing = [s for s in streams if record is not None and s not in record.get("streams", ())]
  if missing:
    raise UserError(f"{paths[0] if paths else 'records'}: the records hold no "
                    f"{' or '.join(missing)} stream; preprocess with every stream needed")
  found = []
  for path in map(str, paths):
    try:
      _check_shard_file(path)
    except UserError as e:
      yield ReadError(str(e))
    else:
      found.append(path)
  if not found:
    return
  iterator = iter(_dataset(found, streams, workers))
  while True:
    try:
      path, parsed = next(iterator)
    except StopIteration:
      return
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
      yield ReadError(tf_message(e))
      continue
    shard = path.numpy().decode()
    parsed = {k: v.numpy() for k, v in parsed.items()}
    try:
      found, info = json.loads(parsed[SETTINGS]), info_of(parsed)
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
      yield ReadError(f"{shard}: a record's i3d/settings, example/id or label is not UTF-8 "
                      f"JSON text ({type(e).__name__}); the record is damaged")
      continue
    if not isinstance(found, dict):
      yield ReadError(f"{shard}: record {info.key}: i3d/settings is not a JSON object")
      continue
    check_settings(found, record, shard)
    images = {s: parsed[s] for s in streams}
    yield RecordClip(shard, info,
                     images if protocol is None else clip_views(images, streams, protocol))


def read_listed(listed: Mapping[str, str | Path], streams: Sequence[str],
                protocol: views.ViewProtocol | None = views.ViewProtocol(),
                record: dict | None = None, workers: int = 2
                ) -> Iterator[tuple[str, RecordClip | str]]:
  """(key, clip) of every clip of `listed` {`example/id`: its shard}, read as `read_clips` reads.

  Clips that a damaged shard or record keeps from being read come last, each with the reason
  instead of a clip (the shard's own `check_shard` names the file). Other records are skipped.
  """
  wanted = dict(listed)
  problems = []
  for item in read_clips(sorted({str(p) for p in wanted.values()}), streams, protocol, record,
                         workers):
    if isinstance(item, ReadError):
      problems.append(item.message)
    elif wanted.pop(item.info.key, None) is not None:
      yield item.info.key, item
  for key, shard in wanted.items():
    try:
      check_shard(shard, streams)
      reason = f"{shard}: record of {key} unreadable ({'; '.join(problems) or 'not found'})"
    except UserError as e:
      reason = str(e)
    yield key, reason


def tf_message(error: tf.errors.OpError) -> str:
  """The reason in a TensorFlow error, without its graph and iterator decorations."""
  text = error.message.splitlines()[0] if error.message else type(error).__name__
  text = re.sub(r"\{\{.*?\}\}\s*", "", text)
  text = re.sub(r"\s*\[Op:.*$", "", text)
  text = re.sub(r"^assertion failed: \[(.*)\]$", r"\1", text.strip())
  return re.sub(r"^.*?Iterator::\S+:\s*", "", text).strip()


def check_settings(found: dict, expected: dict | None, where: str) -> None:
  """A `UserError` naming `where` when records made with `found` settings are not `expected`."""
  if expected is None or found == expected:
    return
  changed = [f"{k} {found.get(k)!r} (requested {expected.get(k)!r})"
             for k in sorted(set(found) | set(expected)) if found.get(k) != expected.get(k)]
  raise UserError(f"{where}: records made with other settings: {'; '.join(changed)}")


def _check_shard_file(path: str) -> None:
  """A `UserError` unless the shard `path` exists and, when local, is a regular file (a named
  pipe would block the reader forever)."""
  if not storage.exists(path):
    raise UserError(f"{path}: no such shard")
  if not storage.is_remote(path):
    check_regular(path, f"{path} (a shard)")


def check_shard(path: str | Path, streams: Sequence[str] = STREAMS) -> int:
  """The number of records in a shard, each parsed and decoded; a truncated or corrupt shard or a
  record of another format is a one-line `UserError` naming the file."""
  _check_shard_file(str(path))
  count = 0
  try:
    for _ in tf.data.TFRecordDataset(str(path), compression_type=compression_type(path)).map(
        lambda r: parse_clip(r, streams)):
      count += 1
  except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
    raise shard_read_error(path, count, e) from None
  return count


def shard_read_error(path: str | Path, count: int, error: tf.errors.OpError) -> UserError:
  """The one line for a shard that failed to read after `count` good records: damaged (a
  `DataLossError`), or holding a record of another format."""
  if isinstance(error, tf.errors.DataLossError):
    return UserError(f"{path}: damaged shard after {text.count(count, 'record')} "
                     f"({tf_message(error)}); preprocess it again")
  return UserError(f"{path}: record {count} is not an I3D MediaSequence clip "
                   f"({tf_message(error)[:200]})")

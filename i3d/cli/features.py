"""`i3d features`: I3D endpoint features for every window of each video, into a folder."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from i3d import kinetics
from i3d._util import text
from i3d.cli import flags
from i3d.errors import UserError
from i3d.inputs.settings import InputSettings


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "features", help="I3D features for every window of videos (resumable)",
      description="Write OUTPUT_DIR/{id}_rgb.npy, {id}_flow.npy (float32, one row per window) "
                  "and {id}.json (window times, settings, checkpoints) for each video, inputs "
                  ".npz from `i3d preprocess`, annotated Kinetics clip, or clip stored in the "
                  "--records of `i3d preprocess`. Finished videos are "
                  "skipped when run again; a bad video is logged to failures.jsonl and the "
                  "others still run (exit status 1).")
  parser.add_argument("videos", nargs="*", help="video files or inputs .npz files")
  flags.add_annotation_flags(parser, required=False)
  parser.add_argument("--records", default=None,
                      help="read the clips from this records folder (`i3d preprocess "
                           "--output_dir`) instead of videos: every clip in it or, with "
                           "--annotations, those clips; the input settings are the records'")
  parser.add_argument("--output_dir", type=Path, required=True, help="where features go")
  flags.add_classifier_flags(parser)
  parser.add_argument("--endpoint", default="Mixed_5c",
                      help="network endpoint (i3d.VALID_ENDPOINTS), e.g. Mixed_4f, Mixed_5c "
                           "(1024 values per window), Logits")
  parser.add_argument("--window_frames", type=int, default=16,
                      help="frames per window at 25 fps")
  parser.add_argument("--stride", type=int, default=16,
                      help="frames between window starts; a last window ends at "
                           "the last frame when frames are left over")
  parser.add_argument("--whole_clip", action="store_true",
                      help="one window of the whole clip instead of strided windows")
  parser.add_argument("--no_pool", dest="pool", action="store_false",
                      help="keep each window's endpoint map instead of averaging it over time "
                           "and space")
  parser.add_argument("--batch", type=int, default=8, help="windows per model call")
  flags.add_input_flags(parser)
  flags.add_cache_flag(parser)
  parser.add_argument("--workers", type=int, default=2,
                      help="with --runner DirectRunner: worker processes (one per "
                           "core)")
  flags.add_runner_flags(parser)
  flags.add_run_flags(parser)


def _jobs(args: argparse.Namespace) -> list[tuple[str, Path]]:
  """(id, path) of the videos named on the command line and the annotated clips found."""
  from i3d.embed.features import video_id  # pylint: disable=import-outside-toplevel
  jobs = [(video_id(v), Path(v)) for v in args.videos]
  if (args.annotations is None) != (args.video_dir is None):
    raise UserError("--annotations and --video_dir go together")
  if args.annotations is not None:
    rows = kinetics.index_videos(flags.annotated_clips(args), args.video_dir,
                                 check_readable=False)
    _skipped(sum(r.path is None for r in rows), f"under {args.video_dir}")
    jobs += [(Path(r.clip.filename).stem, Path(r.path)) for r in rows if r.path is not None]
  if not jobs:
    raise UserError("no videos: name video files, or --annotations with --video_dir, or "
                    "--records")
  return jobs


def _record_jobs(
    args: argparse.Namespace) -> tuple[list[tuple[str, Path | str]], dict, InputSettings]:
  """([(clip id, its shard)], the records' settings record, their input settings) of --records."""
  from i3d.kinetics import recordset  # pylint: disable=import-outside-toplevel
  if args.videos or args.video_dir is not None:
    raise UserError("give videos (or --annotations with --video_dir), or --records, not both")
  if args.time_start is not None or args.time_end is not None:
    raise UserError("--time_start/--time_end do not apply to --records: the records hold the "
                    "clips as they were preprocessed")
  stored, lines = recordset.read_manifest(args.records)
  clips = (flags.annotated_clips(args) if args.annotations is not None
           else [clip for _, clip in recordset.manifest_clips(lines).values()])
  clips, inputs = recordset.records_run(args.records, clips, args.flow_backend)
  rows = recordset.record_rows(clips, args.records)
  _skipped(sum(r.path is None for r in rows), f"in {args.records}")
  jobs = {recordset.clip_key(r.clip): r.path for r in rows if r.path is not None}
  if not jobs:
    raise UserError(f"{args.records}: no clips to extract")
  return list(jobs.items()), stored["records"], inputs


def _skipped(missing: int, where: str) -> None:
  if missing:
    print(f"{text.count(missing, 'annotated clip')} not {where} (skipped)", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
  from i3d.embed import features  # pylint: disable=import-outside-toplevel
  settings = flags.config(features.FeatureSettings, args)
  spec = features.ExtractorSpec(tuple(flags.checkpoints(args).items()), settings,
                                args.checkpoint_dir, args.batch, args.precision,
                                download=not args.offline)
  stored: Optional[dict] = None
  jobs: Sequence[tuple[str, str | Path]]
  if args.records is not None:
    jobs, stored, inputs = _record_jobs(args)
  else:
    jobs, inputs = _jobs(args), flags.input_settings(args)
  if args.runner:
    # The extraction of `spec` as a Beam pipeline on --runner (of records made with `stored`, if
    # given).
    from i3d.pipelines import features as pipeline  # pylint: disable=import-outside-toplevel
    from i3d.pipelines import options  # pylint: disable=import-outside-toplevel
    result = pipeline.extract(spec, jobs, args.output_dir, inputs,
                              options.pipeline_options(args.runner, args.workers, args.beam_args),
                              args.use_cache, options.threads_per_worker(args.runner, args.workers),
                              progress=not args.quiet, stored=stored)
  else:
    extractor = spec.load()
    if stored is not None:
      result = features.extract_records(extractor, dict(jobs), args.output_dir, stored, inputs,
                                        progress=not args.quiet)
    else:
      result = features.extract_videos(extractor, jobs, args.output_dir, inputs, args.use_cache,
                                       progress=not args.quiet)
  print(f"{args.output_dir}: {text.count(len(result.written), 'video')} written, "
        f"{len(result.skipped)} already done, {len(result.failed)} failed"
        + (f" (see {features.FAILURES_FILE})" if result.failed else ""))
  return 1 if result.failed else 0

"""`i3d kinetics subset|download|index`: Kinetics annotations, subsets, downloads and indexes."""

import collections
import csv
from pathlib import Path

from i3d import kinetics
from i3d._util import env, text
from i3d.cli import flags
from i3d.errors import UsageError, UserError
from i3d.kinetics import download as kinetics_download


def register(subparsers) -> None:
  """Adds `kinetics` and its nested subcommands."""
  parser = subparsers.add_parser("kinetics", help="Kinetics-400/600/700 annotations and videos",
                                 description="Kinetics annotations, subsets, downloads and "
                                             "indexes of local videos.")
  commands = parser.add_subparsers(dest="kinetics_command", metavar="SUBCOMMAND", required=True)

  subset = commands.add_parser("subset", help="select clips by split, class and count")
  _dataset_flags(subset)
  subset.add_argument("--classes", default=None,
                      help='comma-separated class names, e.g. "playing cricket,abseiling" '
                           '(default: all)')
  subset.add_argument("--max_samples", type=int, default=None,
                      help="at most this many per split (default: all)")
  subset.add_argument("--shuffle", action="store_true", help="pick clips in random order")
  subset.add_argument("--seed", type=int, default=None,
                      help="seed making --shuffle repeatable (default: a fresh one)")
  subset.add_argument("--video_dir", type=Path, default=None,
                      help="prefer clips already in this directory")
  subset.add_argument("--output", type=Path, required=True, help="CSV file to write")

  fetch = commands.add_parser(
      "download", help="fetch the clips of an annotation file from YouTube, or a whole split "
                       "from the CVDF mirror",
      description="Fetch the clips of an annotation file (e.g. from `subset`) from YouTube, or, "
                  "with --split and no file, a whole split's shards from the CVDF mirror. Clips "
                  "already present are skipped; each clip or shard fetched or failed is "
                  f"recorded in VIDEO_DIR/{kinetics_download.REPORT_NAME}.")
  fetch.add_argument("clips", nargs="?", type=Path, default=None,
                     help="annotation CSV/JSON whose clips to fetch (default: the whole --split)")
  _dataset_flags(fetch, annotations=False)
  fetch.add_argument("--video_dir", type=Path, required=True, help="where clips go")
  fetch.add_argument("--num_workers", type=int, default=4, help="parallel downloads")
  fetch.add_argument("--retries", type=int, default=3, help="retries of transient failures")

  index = commands.add_parser("index", help="which annotated clips are present, missing or "
                                             "unreadable in a video directory")
  _dataset_flags(index)
  index.add_argument("--video_dir", type=Path, required=True, help="directory of clips")
  index.add_argument("--no_check", action="store_true",
                     help="do not decode files to check they are readable (faster)")
  index.add_argument("--output", type=Path, default=None,
                     help="CSV of every clip's status (default: none, counts only)")
  for command, run in ((subset, _subset), (fetch, _download), (index, _index)):
    flags.add_run_flags(command)
    command.set_defaults(run=run)


def _dataset_flags(parser, annotations: bool = True) -> None:
  """Flags naming the Kinetics version, split(s), annotation file and mirror."""
  parser.add_argument("--version", default="400", help="400, 600 or 700 (700-2020)")
  parser.add_argument("--split", default=None,
                      help="train, validation or test, comma-separated for several (default: "
                           "every split in the annotations)")
  if annotations:
    parser.add_argument("--annotations", type=Path, default=None,
                        help="official CSV/JSON file (default: the --split's file, fetched from "
                             "--base_url)")
  parser.add_argument("--base_url", default=kinetics_download.CVDF_BASE_URL,
                      help="mirror with the CVDF layout")


def _splits(args) -> list[str] | None:
  """The --split values, normalised."""
  return [kinetics.normalize_split(s) for s in args.split.split(",")] if args.split else None


def _clips(args, path: Path | None) -> list[kinetics.Clip]:
  """Clips of the annotation file (fetched when not given), restricted to --split."""
  splits = _splits(args)
  if path is None:
    if not splits or len(splits) != 1:
      raise UsageError("pass --annotations FILE, or exactly one --split to fetch its "
                       "annotations")
    path = _fetch_annotations(args, splits[0])
  parsed = kinetics.read_annotations(path, args.version)
  clips = kinetics.usable(parsed, path)
  flags.print_problems(path, parsed.problems)
  return [c for c in clips if splits is None or c.split in splits]


def _fetch_annotations(args, split: str) -> Path:
  """The official annotations of `split` from --base_url; a failure names this command's flags."""
  try:
    return kinetics_download.fetch_annotations(args.version, split, base_url=args.base_url,
                                               offline=args.offline)
  except UserError as e:
    instead = " (or pass a copy with --annotations FILE)" if "annotations" in args else ""
    mirror = "" if args.offline or env.offline() else "; --base_url names another mirror"
    raise UsageError(f"{e}{instead}{mirror}") from None


def _subset(args) -> None:
  clips = _clips(args, args.annotations)
  classes = (kinetics.check_classes([c.strip() for c in args.classes.split(",") if c.strip()],
                                    args.version) if args.classes else None)
  present = kinetics.local_clips(args.video_dir) if args.video_dir else {}
  chosen = kinetics.select(clips, splits=_splits(args), classes=classes,
                           max_samples=args.max_samples, shuffle=args.shuffle, seed=args.seed,
                           present=present)
  kinetics.write_annotations(chosen, args.output)
  print(f"wrote {text.count(len(chosen), 'clip')} "
        f"({sum(c.filename in present for c in chosen)} already present) to {args.output}")


def _download(args) -> int:
  kinetics_download.check_pool(args.num_workers, args.retries)  # before any annotation fetch
  if args.clips is not None:
    results = kinetics_download.download_clips(
        _clips(args, args.clips), args.video_dir, num_workers=args.num_workers,
        retries=args.retries, offline=args.offline)
  elif args.split:
    split = kinetics.normalize_split(args.split)
    results = kinetics_download.download_split(
        args.version, split, args.video_dir, annotations=_fetch_annotations(args, split),
        base_url=args.base_url, num_workers=args.num_workers, retries=args.retries,
        offline=args.offline)
  else:
    raise UsageError("pass an annotation file of clips to fetch from YouTube, or --split to "
                     "fetch a whole split from the CVDF mirror")
  counts = collections.Counter(f"{r.status} ({r.reason})" if r.reason else r.status
                               for r in results)
  print(", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing to do")
  print(f"report: {args.video_dir / kinetics_download.REPORT_NAME}")
  return 1 if any(r.status == "failed" for r in results) else 0


def _index(args) -> None:
  rows = kinetics.index_videos(_clips(args, args.annotations), args.video_dir,
                               check_readable=not args.no_check)
  for label, counts in kinetics.class_counts(rows).items():
    print(f"{label}\tfound {counts['found']}\tmissing {counts['missing']}\t"
          f"unreadable {counts['unreadable']}")
  totals = collections.Counter(r.status for r in rows)
  print(f"total: {text.count(len(rows), 'clip')}, {totals['found']} found, "
        f"{totals['missing']} missing, {totals['unreadable']} unreadable")
  if args.output:
    with args.output.open("w", newline="", encoding="utf-8") as f:
      writer = csv.writer(f)
      writer.writerow(["relpath", "status", "path"])
      writer.writerows([r.clip.relpath, r.status, r.path or ""] for r in rows)

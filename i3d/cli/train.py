"""`i3d train`: fine-tune I3D on labelled records; resumable, on tf.distribute."""

import argparse
import os

from i3d.cli import flags
from i3d.model.streams import FREEZABLE


def register(subparsers) -> None:
  parser = subparsers.add_parser(
      "train", help="fine-tune I3D on labelled records (resumable; several GPUs or machines)",
      description="Fine-tune I3D on the labelled records of `i3d preprocess --dataset` (with "
                  "labels.txt): a new Logits layer for their classes, SGD with momentum, random "
                  "windows, crops and flips. Checkpoints every --checkpoint_every steps: run the "
                  "same command again to resume. The run folder is a checkpoint for `i3d "
                  "evaluate/predict/features/export --checkpoint OUTPUT_DIR`. Several GPUs are "
                  "used together; with TF_CONFIG set, every worker runs the same command "
                  "(MultiWorkerMirroredStrategy).")
  parser.add_argument("--records", required=True, help="training records folder (labels.txt)")
  parser.add_argument("--eval_records", default=None,
                      help="evaluation records folder, same labels.txt (default: none)")
  parser.add_argument("--output_dir", required=True, help="the run folder")
  parser.add_argument("--eval_type", choices=("rgb", "flow", "joint"), default="rgb",
                      help="towers trained: rgb, flow, or joint (both, logits summed)")
  parser.add_argument("--init", default="rgb_imagenet", metavar="NAME|PATH|RUN|scratch",
                      help="starting weights of the (first) tower: a released name, rgb_tfhub, a "
                           "checkpoint path, an earlier run folder, or scratch")
  parser.add_argument("--flow_init", default="flow_imagenet", metavar="NAME|PATH|RUN|scratch",
                      help="starting weights of the flow tower with --eval_type joint")
  parser.add_argument("--freeze_until", choices=FREEZABLE, default="none", metavar="ENDPOINT",
                      help="freeze the layers up to this endpoint (Mixed_5c: only the logits "
                           "train, a linear probe)")
  parser.add_argument("--batchnorm", choices=("frozen", "trained"), default="frozen",
                      help="BatchNorm statistics: frozen (the checkpoint's) or trained (batch "
                           "statistics, moving averages updated)")
  parser.add_argument("--dropout_keep_prob", type=float, default=0.5,
                      help="dropout keep probability before the logits (0.5 as released)")
  parser.add_argument("--learning_rate", type=float, default=0.01, help="peak learning rate")
  parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
  parser.add_argument("--weight_decay", type=float, default=1e-7,
                      help="L2 weight decay on the convolution kernels")
  parser.add_argument("--schedule", choices=("cosine", "step"), default="cosine",
                      help="after warm-up: cosine to 0, or a tenth at 1/2 and 3/4 of the steps")
  parser.add_argument("--warmup_steps", type=int, default=0, help="linear warm-up steps")
  parser.add_argument("--clip_frames", type=int, default=64,
                      help="frames of each random window (shorter clips are looped)")
  parser.add_argument("--crop_size", type=int, default=224, help="random crop size in pixels")
  parser.add_argument("--flip", dest="flip", action="store_true", default=False,
                      help="mirror training clips at random (flow: x negated); for classes that "
                           "stay what they are in a mirror, as in UCF101, HMDB51 and Kinetics. "
                           "Off by default: a mirrored clip of 'moving left' shows 'moving right'")
  parser.add_argument("--no_flip", dest="flip", action="store_false",
                      help="no random horizontal flips (the default)")
  parser.add_argument("--batch", type=int, default=8,
                      help="global batch, split over the replicas")
  parser.add_argument("--steps", type=int, default=None, help="training steps")
  parser.add_argument("--epochs", type=float, default=None,
                      help="training epochs instead of --steps")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the data order, crops, flips, dropout and new weights")
  parser.add_argument("--checkpoint_every", type=int, default=100, help="steps between checkpoints")
  parser.add_argument("--keep", type=int, default=3, help="training checkpoints kept")
  parser.add_argument("--eval_every", type=int, default=0,
                      help="steps between evaluations (0: at every checkpoint)")
  parser.add_argument("--eval_batch", type=int, default=4, help="clips per evaluation batch")
  parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                      help="compute precision of the layers up to Mixed_5c (variables, logits and "
                           "loss stay float32): auto (default: bfloat16 on GPUs of compute "
                           "capability 8.0+ and CPUs with AVX512_BF16 or AMX, else float32), "
                           "float32, or bfloat16 (a warning says when it would be emulated)")
  flags.add_checkpoint_flag(parser)
  flags.add_run_flags(parser)


def strategy_for(tf_config: bool):
  """MultiWorkerMirroredStrategy under TF_CONFIG; Sonnet's Replicator (a MirroredStrategy) over
  several visible GPUs; else the default strategy."""
  import sonnet as snt  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if tf_config:
    return tf.distribute.MultiWorkerMirroredStrategy()
  gpus = tf.config.list_logical_devices("GPU")
  return snt.distribute.Replicator([g.name for g in gpus]) if len(gpus) > 1 else None


def main(args: argparse.Namespace) -> None:
  from i3d.train import loop  # pylint: disable=import-outside-toplevel
  if args.steps is None and args.epochs is None:
    args.steps = 1000
  config = flags.config(loop.TrainConfig, args, download=not args.offline)
  state = loop.train(config, strategy_for("TF_CONFIG" in os.environ))
  best = state["best_top1"]
  print(f"trained {state['step']} steps into {args.output_dir} (final loss {state['loss']:.4f}"
        f"{f', best eval top-1 {best:.4f}' if best is not None else ''}); use it with "
        f"--checkpoint {args.output_dir}")

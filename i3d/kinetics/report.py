"""The human side of an evaluation run: summary.md and PNG plots made from metrics.json.

The plots need matplotlib (the `report` extra); without it summary.md is written alone and one
line on stderr says how to get the plots.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np

from i3d._util import extras
from i3d._util.files import atomic_write
from i3d.errors import UserError

METRICS_FILE = "metrics.json"
SUMMARY_FILE = "summary.md"
PER_CLASS_PLOT = "per_class_accuracy.png"
CONFUSION_PLOT = "confusion.png"


# What the report reads from metrics.json, with the types it needs (None: no video scored).
_NUMBER = (float, int, type(None))
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "eval_type": (str, type(None)), "protocol": str, "top1": _NUMBER, "top5": _NUMBER,
    "mean_class_accuracy": _NUMBER, "challenge_error": _NUMBER, "num_videos": int,
    "num_missing": int, "num_failed": int, "per_class_accuracy": dict, "per_class_videos": dict,
    "confused_pairs": list, "confusion": dict, "missing": list, "failed": list}


def load_metrics(output_dir: Path) -> dict:
  """metrics.json of a finished (or partly finished) run, checked to be one."""
  path = Path(output_dir) / METRICS_FILE
  try:
    result = json.loads(path.read_text(encoding="utf-8"))
  except FileNotFoundError:
    raise UserError(f"{path} not found; run `i3d evaluate --output_dir {output_dir}` "
                    f"first") from None
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise UserError(f"{path} is not valid JSON ({e})") from None
  wrong = ([k for k, kind in _FIELDS.items() if not isinstance(result.get(k), kind)]
           if isinstance(result, dict) else ["the whole file (not an object)"])
  if wrong:
    raise UserError(f"{path} is not the metrics of an `i3d evaluate` run (bad or missing "
                    f"{', '.join(wrong[:3])}); run `i3d evaluate` again to rewrite it")
  return result


def _percent(value: float | None) -> str:
  return "n/a" if value is None or math.isnan(value) else f"{value:.2%}"


def summary_markdown(result: dict, shown: int = 10) -> str:
  """summary.md: scores, counts, the best and worst classes, the most confused pairs, exclusions."""
  per_class = sorted(result["per_class_accuracy"].items(), key=lambda kv: (-kv[1], kv[0]))
  lines = [
      f"# Evaluation: {result['eval_type']}, {result['protocol']}", "",
      "| metric | value |", "|---|---|",
      f"| top-1 accuracy | {_percent(result['top1'])} |",
      f"| top-5 accuracy | {_percent(result['top5'])} |",
      f"| mean class accuracy | {_percent(result['mean_class_accuracy'])} |",
      f"| challenge error (mean of top-1 and top-5 error) | {_number(result['challenge_error'])} |",
      f"| videos scored | {result['num_videos']} |",
      f"| missing (not scored) | {result['num_missing']} |",
      f"| failed to decode (not scored) | {result['num_failed']} |", "",
      f"Classes scored: {len(per_class)}. Plots: `{PER_CLASS_PLOT}`, `{CONFUSION_PLOT}`.", ""]
  if len(per_class) > 2 * shown:
    lines += _class_table(f"Best {shown} classes", per_class[:shown], result["per_class_videos"])
    lines += _class_table(f"Worst {shown} classes", per_class[::-1][:shown],
                          result["per_class_videos"])
  else:  # best and worst would overlap: one table, best first
    lines += _class_table("Classes, best first", per_class, result["per_class_videos"])
  lines += ["## Most confused pairs", "", "| true | predicted as | videos |", "|---|---|---|"]
  lines += [f"| {p['true']} | {p['predicted']} | {p['videos']} |"
            for p in result["confused_pairs"][:shown]]
  if result["missing"] or result["failed"]:
    lines += ["", "## Not scored", ""]
    lines += [f"- missing: {name}" for name in result["missing"]]
    lines += [f"- failed: {f['id']}: {f['reason']}" for f in result["failed"]]
  return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
  return "n/a" if value is None else f"{value:.4f}"


def _class_table(title: str, rows: list[tuple[str, float]], videos: dict[str, int]) -> list[str]:
  return ([f"## {title}", "", "| class | top-1 accuracy | videos |", "|---|---|---|"]
          + [f"| {name} | {_percent(acc)} | {videos[name]} |" for name, acc in rows] + [""])


def _pyplot():
  """matplotlib's pyplot drawing into files only (never a display)."""
  matplotlib = extras.require("matplotlib", "the evaluation plots")
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def plot_per_class(result: dict, path: Path) -> None:
  """Horizontal bars of per-class top-1 accuracy, sorted, with the mean class accuracy marked."""
  plt = _pyplot()
  items = sorted(result["per_class_accuracy"].items(), key=lambda kv: kv[1])
  names, values = [k for k, _ in items], [v for _, v in items]
  figure, axes = plt.subplots(figsize=(8, max(2.5, 0.18 * len(items) + 1)))
  axes.barh(np.arange(len(items)), values, color="tab:blue")
  axes.set_yticks(np.arange(len(items)), names, fontsize=6 if len(items) > 60 else 8)
  if result["mean_class_accuracy"] is not None:
    axes.axvline(result["mean_class_accuracy"], color="tab:red", linestyle="--",
                 label=f"mean class accuracy {_percent(result['mean_class_accuracy'])}")
    axes.legend(loc="lower right")
  axes.set_xlim(0, 1)
  axes.set_xlabel("top-1 accuracy")
  axes.set_title(f"Per-class accuracy ({len(items)} classes)")
  _save(figure, path)


def plot_confusion(result: dict, path: Path) -> None:
  """Heat map of the confusion among the classes of the most confused pairs (row-normalised)."""
  plt = _pyplot()
  classes = result["confusion"]["classes"]
  counts = np.array(result["confusion"]["counts"], float).reshape(len(classes), len(classes))
  rows = counts.sum(axis=1, keepdims=True)
  shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
  # The title spans the figure (not the axes beside the colour bar) and the layout makes room
  # for it, so it is never clipped.
  figure, axes = plt.subplots(figsize=(max(6.0, 3 + 0.5 * len(classes)), 2.5 + 0.5 * len(classes)),
                              layout="constrained")
  figure.suptitle(confusion_title(classes, result))
  if not classes:  # nothing misclassified: a titled empty figure, not a 0x0 image
    axes.set_axis_off()
    _save(figure, path)
    return
  image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
  axes.set_xticks(np.arange(len(classes)), classes, rotation=60, ha="right", fontsize=8)
  axes.set_yticks(np.arange(len(classes)), classes, fontsize=8)
  for (i, j), n in np.ndenumerate(counts):
    if n:
      axes.text(j, i, str(int(n)), ha="center", va="center", fontsize=7,
                color="white" if shares[i, j] > 0.5 else "black")
  axes.set_xlabel("predicted")
  axes.set_ylabel("true")
  figure.colorbar(image, ax=axes, label="share of the true class")
  _save(figure, path)


def confusion_title(classes: list[str], result: dict) -> str:
  """What the confusion plot shows: every class involved in a prediction, or the most confused."""
  involved = set(result["per_class_accuracy"]) | {p["predicted"] for p in result["confused_pairs"]}
  if not classes:
    return "Confusion: no misclassified videos"
  if involved <= set(classes):
    return f"Confusion among all {len(classes)} classes"
  return f"Confusion among the {len(classes)} most confused classes"


def _save(figure, path: Path) -> None:
  if figure.get_layout_engine() is None:
    figure.tight_layout()
  with atomic_write(path, "wb") as f:
    figure.savefig(f, dpi=100, format="png")
  _pyplot().close(figure)


def write_report(output_dir: Path) -> str:
  """Writes summary.md and the plots of a run from its metrics.json; returns the summary."""
  output_dir = Path(output_dir)
  result = load_metrics(output_dir)
  try:
    text = summary_markdown(result)
    if extras.available("matplotlib"):
      plot_per_class(result, output_dir / PER_CLASS_PLOT)
      plot_confusion(result, output_dir / CONFUSION_PLOT)
    else:
      print(f"note: no plots in {output_dir}: matplotlib is not installed "
            f"({extras.hint('matplotlib')})", file=sys.stderr)
  except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
    raise UserError(f"{output_dir / METRICS_FILE} holds malformed values ({type(e).__name__}: "
                    f"{e}); run `i3d evaluate` again to rewrite it") from None
  with atomic_write(output_dir / SUMMARY_FILE) as f:
    f.write(text)
  return text

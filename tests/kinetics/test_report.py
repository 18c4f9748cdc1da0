"""summary.md and plot titles say what they show, for few classes and for many."""

import warnings

import matplotlib.image
import pytest

from i3d.kinetics import report


def metrics(accuracy: dict[str, float], pairs: list[tuple[str, str]], shown: list[str]) -> dict:
  """A metrics.json-like dict with the fields the report reads."""
  return {"eval_type": "rgb", "protocol": "released", "top1": 0.5, "top5": 0.9,
          "mean_class_accuracy": 0.5, "challenge_error": 0.3, "num_videos": 10,
          "num_missing": 0, "num_failed": 0, "per_class_accuracy": accuracy,
          "per_class_videos": {name: 2 for name in accuracy},
          "confused_pairs": [{"true": t, "predicted": p, "videos": 1} for t, p in pairs],
          "confusion": {"classes": shown, "counts": [[0] * len(shown)] * len(shown)},
          "missing": [], "failed": []}


def section(text: str, title: str) -> list[str]:
  """The class names in the table under `## title`."""
  block = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
  return [line.split(" | ")[0].lstrip("| ") for line in block.splitlines()[3:] if line]


def test_few_classes_are_listed_once_best_first():
  text = report.summary_markdown(metrics({"a": 0.2, "b": 0.9, "c": 0.5}, [], []))
  assert "Best" not in text and "Worst" not in text
  assert section(text, "Classes, best first") == ["b", "c", "a"]


def test_many_classes_have_disjoint_best_and_worst_tables():
  accuracy = {f"class {i:02d}": i / 30 for i in range(30)}
  text = report.summary_markdown(metrics(accuracy, [], []))
  best, worst = section(text, "Best 10 classes"), section(text, "Worst 10 classes")
  assert best == [f"class {i:02d}" for i in range(29, 19, -1)]
  assert worst == [f"class {i:02d}" for i in range(10)]


def test_confusion_title_matches_what_is_shown():
  few = metrics({"a": 0.5, "b": 0.5}, [("a", "b"), ("b", "a")], ["a", "b"])
  assert report.confusion_title(["a", "b"], few) == "Confusion among all 2 classes"
  many = metrics({f"c{i}": 0.5 for i in range(12)}, [("c0", "c1")], ["c0", "c1"])
  assert report.confusion_title(["c0", "c1"], many) == ("Confusion among the 2 most confused "
                                                        "classes")
  assert report.confusion_title([], metrics({"a": 1.0}, [], [])) == ("Confusion: no "
                                                                     "misclassified videos")


@pytest.mark.parametrize("shown", [[], ["a", "b"]])
def test_confusion_plot_draws_without_warnings_even_with_nothing_confused(tmp_path, shown):
  path = tmp_path / "confusion.png"
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # an empty image used to warn about singular axis limits
    report.plot_confusion(metrics({"a": 0.5, "b": 1.0}, [("a", "b")] if shown else [], shown),
                          path)
  assert matplotlib.image.imread(path).shape[-1] in (3, 4)


def test_not_scored_section_only_when_something_was_not_scored():
  clean = metrics({"a": 0.5}, [], [])
  assert "Not scored" not in report.summary_markdown(clean)
  text = report.summary_markdown({**clean, "missing": ["x_000001_000011.mp4"]})
  assert text.endswith("## Not scored\n\n- missing: x_000001_000011.mp4\n")


@pytest.mark.parametrize("count", [2, 12])
def test_confusion_title_lies_inside_the_figure(tmp_path, monkeypatch, count):
  names = [f"a long class name {i}" for i in range(count)]
  result = metrics({n: 0.5 for n in names}, [(names[0], names[1])], names)
  saved = report._save
  boxes = []

  def measure(figure, path):
    figure.canvas.draw()  # lays out the figure as savefig will
    renderer = figure.canvas.get_renderer()
    boxes.append((figure.get_suptitle(), figure._suptitle.get_window_extent(renderer),
                  figure.bbox, [a.get_window_extent(renderer) for a in figure.axes]))
    saved(figure, path)

  monkeypatch.setattr(report, "_save", measure)
  report.plot_confusion(result, tmp_path / "confusion.png")
  title, box, page, axes = boxes[0]
  assert title.startswith("Confusion among")
  assert page.x0 <= box.x0 and box.x1 <= page.x1 and box.y1 <= page.y1
  assert all(box.y0 >= a.y1 for a in axes)  # above the heat map and the colour bar, not over them

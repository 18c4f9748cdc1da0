"""What an evaluation run records and writes: one record per scored or failed clip, the metrics
of the records, metrics.json, the ActivityNet results file and the report (`report`), for the
single-process run (`evaluation`) and the Beam pipeline alike."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from i3d._util import text
from i3d._util.files import write_json
from i3d.classify import ranking
from i3d.kinetics import metrics, report
from i3d.kinetics.annotations import Clip
from i3d.runs import folder as runs

ACTIVITYNET_FILE = "results_activitynet.json"
SCORES = ("top1", "top5", "mean_class_accuracy", "challenge_error")


def failure_record(clip: Clip, path: object, reason: str) -> dict:
  """One line of failures.jsonl; a local file's state (`runs.file_state`) is kept too, so the video
  is tried again once the file changes."""
  record = {"id": clip.youtube_id, "label": clip.label, "path": str(path), "reason": reason}
  state = runs.file_state(str(path))
  return record if state is None else {**record, "file": state}


def prediction_record(clip: Clip, logits: dict[str, np.ndarray], labels: Sequence[str],
                      top_k: int, save_logits: bool) -> dict:
  """One line of predictions.jsonl: id, label, top-k classes, softmax scores of summed logits."""
  fused = ranking.fuse(logits)
  probabilities = ranking.softmax(fused)
  top = ranking.top_k(fused, top_k)
  record: dict[str, object] = {"id": clip.youtube_id, "label": clip.label,
            "classes": [labels[i] for i in top],
            "scores": [float(probabilities[i]) for i in top]}
  if save_logits:
    record["stream_logits"] = {s: v.astype(float).tolist() for s, v in logits.items()}
  return record


def activitynet_results(records: Sequence[dict], num_classes: int) -> dict:
  """The ActivityNet challenge classification format read by the official evaluation code."""
  return {"version": f"KINETICS-{num_classes}",
          "results": {r["id"]: [{"label": c, "score": s} for c, s in zip(r["classes"], r["scores"])]
                      for r in records},
          "external_data": {"used": True, "details": "I3D: ImageNet-pretrained Inception-v1 "
                                                     "weights inflated, trained on Kinetics"}}


def write_outputs(output_dir: Path, labels: Sequence[str], records: Sequence[dict],
                  failures: Sequence[dict], missing: Sequence[Clip], protocol: str,
                  eval_type: str | None) -> dict:
  """metrics.json, the ActivityNet results file, summary.md and the plots; returns the metrics."""
  index = {name: i for i, name in enumerate(labels)}
  ranked = np.array([[index[c] for c in r["classes"]] for r in records] or np.zeros((0, 5)),
                    np.int64)
  truth = np.array([index[r["label"]] for r in records], np.int64)
  scores = metrics.summarize(ranked, truth, tuple(labels))
  if not records:  # strict JSON has no NaN: null, and why
    scores = {**scores, **{k: None for k in SCORES},
              "not_scored": f"no video was scored ({len(missing)} missing, {len(failures)} "
                            f"failed)"}
  result = {**scores, "num_videos": len(records), "num_missing": len(missing),
            "num_failed": len(failures), "eval_type": eval_type,
            "protocol": protocol,
            "missing": [c.filename for c in missing],
            "failed": [{"id": f["id"], "reason": f["reason"]} for f in failures]}
  write_json(output_dir / report.METRICS_FILE, result)
  write_json(output_dir / ACTIVITYNET_FILE, activitynet_results(records, len(labels)))
  report.write_report(output_dir)
  return result


def score_line(result: dict) -> str:
  """The one-line summary printed when a run ends."""
  counts = (f"({text.count(result['num_videos'], 'video')}; {result['num_missing']} missing "
            f"and {result['num_failed']} failed, not scored)")
  if result["top1"] is None:
    return f"{result['not_scored']} {counts}"
  return (f"top-1 {result['top1']:.2%}  top-5 {result['top5']:.2%}  mean class accuracy "
          f"{result['mean_class_accuracy']:.2%}  challenge error {result['challenge_error']:.4f}  "
          + counts)

"""`i3d preprocess --runner` on Beam's local runner writes the records one process writes, and
`i3d evaluate --records --runner` scores them as the single-process evaluation does."""

import json
from pathlib import Path

import tensorflow as tf

import i3d
from i3d import kinetics
from i3d.inputs import records
from i3d.kinetics import evaluation, preprocess
from i3d.pipelines import evaluate as beam_evaluate
from i3d.pipelines import options
from i3d.pipelines.preprocess import beam_encoder
from i3d.testing import write_validation_set
from tests.pipelines.test_evaluate import CONFIG, FAST_FLOW, SPECS, assert_same_outputs

SETTINGS = preprocess.PreprocessConfig(settings=FAST_FLOW, num_shards=2)


def examples(shard: Path) -> list[tf.train.SequenceExample]:
  return [tf.train.SequenceExample.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(str(shard))]


def manifest(folder: Path) -> list[dict]:
  return sorted((json.loads(line) for line in (folder / preprocess.MANIFEST_FILE).read_text()
                 .splitlines()), key=lambda r: r["shard"])


def failures(folder: Path) -> list[dict]:
  return sorted((json.loads(line) for line in (folder / preprocess.FAILURES_FILE).read_text()
                 .splitlines()), key=lambda r: r["id"])


def test_beam_records_equal_single_process_records_and_score_alike(tmp_path, checkpoint_dir):
  annotations, video_dir = write_validation_set(tmp_path, SPECS)
  clips = kinetics.read_annotations(annotations).clips
  single, beam = tmp_path / "single", tmp_path / "beam"
  preprocess.preprocess(clips, video_dir, single, SETTINGS, progress=False)
  encoder = beam_encoder(options.pipeline_options("DirectRunner", 2), threads=1, progress=False)
  summary = preprocess.preprocess(clips, video_dir, beam, SETTINGS, progress=False,
                                  encoder=encoder)
  assert summary == {"output_dir": str(beam), "shards": 2, "num_shards": 2, "clips": 2,
                     "failed": 2}
  names = [p.name for p in records.list_shards(single)]
  assert names == [p.name for p in records.list_shards(beam)] == [
      "clips-00000-of-00002.tfrecord", "clips-00001-of-00002.tfrecord"]
  ours, theirs = ([examples(folder / name) for name in names] for folder in (beam, single))
  # The same examples in the same shards (protobuf maps serialize in no fixed order).
  assert [len(e) for e in ours] == [2, 0] and ours == theirs
  assert (beam / preprocess.SETTINGS_FILE).read_text() == (
      single / preprocess.SETTINGS_FILE).read_text()
  assert manifest(beam) == manifest(single)
  assert failures(beam) == failures(single)
  assert [f["id"] for f in failures(beam)] == ["bad_clip_05_000000_000010",
                                               "gone_clip06_000000_000010"]
  assert not list((beam / preprocess.STAGING_DIR).iterdir())
  # A rerun finds everything done.
  again = preprocess.preprocess(clips, video_dir, beam, SETTINGS, progress=False,
                                encoder=encoder)
  assert again == summary

  classifier = i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False)
  config = CONFIG
  evaluation.evaluate(classifier, clips, None, tmp_path / "scored_single", config,
                      progress=False, records_dir=single)
  beam_evaluate.evaluate(beam_evaluate.ClassifierSpec("rgb", str(checkpoint_dir)), clips, None,
                         str(tmp_path / "scored_beam"), config,
                         options.pipeline_options("DirectRunner", 2), threads=1,
                         progress=False, records_dir=str(beam))
  # The records hold the same clips, so the runs differ only in where they read them.
  assert_same_outputs(tmp_path / "scored_beam", tmp_path / "scored_single")

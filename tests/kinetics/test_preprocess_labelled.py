"""`preprocess.preprocess` on whole labelled videos (`i3d.datasets`): RGB and flow records of a
CSV set's split, their labels from the given class list, and the refusal of a label outside it."""

import dataclasses

import pytest
import tensorflow as tf

from i3d.datasets import labelled
from i3d.errors import UserError
from i3d.inputs import records
from i3d.kinetics import preprocess
from i3d.kinetics.annotations import video_clip
from i3d.testing import write_clip
from tests.kinetics.test_evaluation import FAST_FLOW


def test_csv_split_records_with_flow_labelled_from_the_class_list(tmp_path):
  for seed, path in enumerate(["v/walk one.mp4", "v/run.mp4", "v/sit.mp4"]):
    write_clip(tmp_path / path, None, 0.2, (64, 48), seed)
  (tmp_path / "set.csv").write_text("v/walk one.mp4,walk,train\nv/run.mp4,run,train\n"
                                    "v/sit.mp4,sit,test\n")
  dataset = labelled.csv_set(tmp_path / "set.csv", split="train")
  config = preprocess.PreprocessConfig(settings=FAST_FLOW, labels=dataset.classes, num_shards=2)
  summary = preprocess.preprocess(dataset.clips, dataset.video_dir, tmp_path / "rec", config,
                                  progress=False)
  assert (summary["clips"], summary["failed"], summary["shards"]) == (2, 0, 2)
  assert (tmp_path / "rec" / "labels.txt").read_text() == "run\nsit\nwalk\n"
  found = {}
  for shard in sorted((tmp_path / "rec").glob("*.tfrecord")):
    for serialized in tf.data.TFRecordDataset(str(shard)):
      parsed = records.parse_clip(serialized)
      found[parsed[records.EXAMPLE_ID].numpy().decode()] = (
          int(parsed[records.LABEL_INDEX]), tuple(parsed["rgb"].shape), parsed["flow"].numpy())
  assert sorted(found) == ["v/run.mp4", "v/walk one.mp4"]
  assert found["v/run.mp4"][0] == 0 and found["v/walk one.mp4"][0] == 2
  for _, rgb, flow in found.values():
    assert rgb == (5, 256, 341, 3) and flow.shape == rgb
    assert flow[..., 2].mean() < 1 and flow[..., :2].std() > 0  # JPEG'd zeros; a moving square


def test_a_label_outside_the_class_list_is_refused(tmp_path):
  config = dataclasses.replace(preprocess.PreprocessConfig(), labels=("run", "walk"),
                               streams=("rgb",))
  with pytest.raises(UserError, match="label 'sit' is not in the class list"):
    preprocess.preprocess([video_clip("sit/a.mp4", "sit")], tmp_path, tmp_path / "rec", config,
                          progress=False)
  with pytest.raises(UserError, match="unknown stream depth"):
    preprocess.PreprocessConfig(streams=("rgb", "depth"))

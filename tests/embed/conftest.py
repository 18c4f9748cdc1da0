"""A records set for the FVD sources and distances."""

import pytest

from i3d.inputs import records
from i3d.inputs.settings import InputSettings
from i3d.testing import write_clip
from tests.support.records import write_records


@pytest.fixture(scope="module")
def record_set(tmp_path_factory):
  """A records folder: one GZIP shard of two RGB-only clips of 12 frames."""
  root = tmp_path_factory.mktemp("record_set")
  videos = {f"gen_{i}": write_clip(root / f"gen_{i}.mp4", None, 0.5, (64, 48), seed=i)
            for i in range(2)}
  shard = write_records(root / "records" / records.shard_name("k", 0, 1, "gzip"), videos,
                        InputSettings(), streams=("rgb",))
  return root / "records", shard


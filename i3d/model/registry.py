"""The checkpoints: the five released with the paper, and `rgb_tfhub` (the TF-Hub Kinetics-400
model, converted from another source by `i3d.model.tfhub`); what each is and where its files
live (no TensorFlow)."""

import dataclasses
from typing import Optional

from i3d._util import env
from i3d.errors import CheckpointError
from i3d.model.streams import STREAM_CHANNELS, STREAM_SCOPE

RELEASE_COMMIT = "0667e889a5904b4dc122e0ded4c332f49f8df42c"
DEFAULT_BASE_URL = (f"https://github.com/deepmind/kinetics-i3d/raw/{RELEASE_COMMIT}"
                    f"/data/checkpoints")
PREFIX = "model.ckpt"
INDEX_FILE = "model.ckpt.index"
DATA_FILE = "model.ckpt.data-00000-of-00001"
META_FILE = "model.ckpt.meta"
STATE_FILE = "checkpoint"
REQUIRED_FILES = (INDEX_FILE, DATA_FILE)  # enough to load weights by prefix
RELEASE, TFHUB = "release", "tfhub"  # where a checkpoint comes from


@dataclasses.dataclass(frozen=True, kw_only=True)
class CheckpointInfo:
  """One released checkpoint.

  Attributes:
    name: the release's folder name, e.g. `rgb_imagenet`.
    stream: "rgb" or "flow".
    num_classes: classes of its logits.
    label_map: the label-map file (in data/) naming those classes.
    scoped: whether its variables sit under the joint graph's `RGB/` or `Flow/` scope.
    sha1: git blob SHA-1 of each released file, by file name (none for converted ones).
    source: RELEASE (downloaded from the release) or TFHUB (converted by `i3d.model.tfhub`).
  """
  name: str
  stream: str
  num_classes: int = 400
  label_map: str = "label_map.txt"
  scoped: bool = True
  sha1: dict[str, str]
  source: str = RELEASE

  @property
  def channels(self) -> int:
    return STREAM_CHANNELS[self.stream]

  @property
  def scope(self) -> str:
    """Prefix of the model's variable names in the checkpoint, e.g. `RGB/inception_i3d/`."""
    return f"{STREAM_SCOPE[self.stream]}/inception_i3d/" if self.scoped else ""

  def url(self, file: str, base_url: Optional[str] = None) -> str:
    """Where `file` is served: `base_url`, `$I3D_CHECKPOINT_BASE_URL`, or the release."""
    base = base_url or env.checkpoint_base_url() or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{self.name}/{file}"


CHECKPOINTS = {info.name: info for info in (
    CheckpointInfo(name="rgb_imagenet", stream="rgb", sha1={
        STATE_FILE: "4ca69b22d0b129450e6fd8532e297795daa08ae1",
        DATA_FILE: "2958652e0c9c48a65010c0ebda5c9cfd4edc7c18",
        INDEX_FILE: "5ab1058b8f4f89a896c01f67c0a4c96a31548af7",
        META_FILE: "5959445a7c2adf3ea0968e22612085a5c4bce4d2"}),
    CheckpointInfo(name="flow_imagenet", stream="flow", sha1={
        STATE_FILE: "b1d98a470052b65ddfb29656d5b1b8dff29b169e",
        DATA_FILE: "bf56831f663abc3de0d35f193030b73a3df7fb61",
        INDEX_FILE: "8217f9450d851d24782aaf1af01c5c3b35b81a35",
        META_FILE: "084e3ed7a9e7efc559ccee773097c71be7196780"}),
    CheckpointInfo(name="rgb_scratch", stream="rgb", sha1={
        STATE_FILE: "d0c807cae5dd117942f2673f28503c5ebfd431b7",
        DATA_FILE: "fa7df95674dbf3579e7fccd954e51e706b4734c1",
        INDEX_FILE: "84dd4518e982d9ca6ce1ff02e95fca2e8cbb1f73",
        META_FILE: "41ff43137ea26b1f26853429e7458e3519e071a9"}),
    CheckpointInfo(name="flow_scratch", stream="flow", sha1={
        STATE_FILE: "4441936dd6ed920127c129e15b311959c1e9f8c6",
        DATA_FILE: "1d6a0b68f32544af11111342857e47e30d13afa9",
        INDEX_FILE: "193bc425100f3978c793da66bd9eb54baea8dc6a",
        META_FILE: "fa8d81c913ef531e8007a292db2e4969033e7cf9"}),
    CheckpointInfo(name="rgb_scratch_kin600", stream="rgb", num_classes=600,
                   label_map="label_map_600.txt", scoped=False, sha1={
                       STATE_FILE: "febd7d546081c498d644978b31e8c836a8931736",
                       DATA_FILE: "6392a74c3180e706cabada39d8f40a50a48642e5",
                       INDEX_FILE: "d378d8f01215fe92a29cd170f040c284070e9cd5",
                       META_FILE: "a2d73a13a94a9470b5e5949cbf7d244469e31a5b"}),
    CheckpointInfo(name="rgb_tfhub", stream="rgb", sha1={}, source=TFHUB),
)}
RELEASED = tuple(name for name, info in CHECKPOINTS.items() if info.source == RELEASE)


def get_info(name: str) -> CheckpointInfo:
  """The registry entry for a released checkpoint name."""
  try:
    return CHECKPOINTS[name]
  except KeyError:
    raise CheckpointError(f"unknown checkpoint {name!r}; known ones are "
                          f"{', '.join(CHECKPOINTS)}, or pass a checkpoint path") from None

"""Whole-clip logits in chunks (`i3d.model.chunks`) against one pass of the independent plain
`tf.nn` graph: the chunks' joined Mixed_5c and the logits equal it to float32 round-off, on
clip lengths of every residue modulo the temporal stride."""

import numpy as np
import pytest

import i3d
from i3d.errors import UserError
from i3d.model import chunks
from tests.support.clips import random_clip
from tests.support.reference_i3d import reference_endpoint, reference_logits


@pytest.fixture(scope="module")
def rgb_parts(checkpoint_dir):
  """The RGB tower's stem and trunk (to Mixed_5c, the whole map kept), as `chunks.Part`s."""
  model = i3d.InceptionI3d(400, final_endpoint="Mixed_5c")
  i3d.load_checkpoint(model, "rgb_imagenet", checkpoint_dir=checkpoint_dir, download=False)
  return ({"rgb": lambda clips: model.backbone(clips, until=chunks.STEM_END).numpy()},
          {"rgb": lambda net: model.backbone(net, after=chunks.STEM_END).numpy()})


@pytest.mark.parametrize("grid", [chunks.STEM, chunks.TRUNK])
def test_plan_covers_every_step_once_with_aligned_chunks_of_the_inputs_residue(grid):
  for length in (120, 131, 250, 1003, 9000):
    planned = chunks.plan(length, 200, grid)
    kept = [step for c in planned for step in range(c.keep_start, c.keep_stop)]
    assert kept == list(range(grid.steps(length)))
    for c in planned:
      assert c.start % grid.stride == 0 and c.stop - c.start <= 200
      assert (c.stop - c.start) % grid.stride == length % grid.stride
      assert c.start == 0 or c.keep_start * grid.stride - c.start >= grid.before
      assert c.stop == length or c.stop - c.keep_stop * grid.stride >= grid.after
    assert planned[0].start == 0 and planned[-1].stop == length
  assert chunks.plan(100, 200, grid) == [chunks.Chunk(0, 100, 0, -(-100 // grid.stride))]


def test_a_budget_too_small_for_the_halos_is_one_line():
  smallest = chunks.chunk_length(45)
  assert smallest >= chunks.MIN_CHUNK
  with pytest.raises(UserError, match=r"budget of 44 frames \(\$I3D_CHUNK_FRAMES\) is too "
                                      r"small: give at least 45"):
    chunks.chunk_length(44)


@pytest.mark.parametrize("frames", [129, 134, 139, 148])  # residues 1, 6, 3, 4 modulo 8
def test_joined_mixed_5c_of_chunks_equals_one_pass_of_the_reference(frames, rgb_parts,
                                                                    checkpoint_dir):
  clip = random_clip(frames, 3, seed=frames, size=32)
  expected = reference_endpoint(str(checkpoint_dir / "rgb_imagenet" / "model.ckpt"), clip,
                                "Mixed_5c")
  budget = 45  # chunks of chunks.MIN_CHUNK
  size = chunks.chunk_length(budget)
  assert len(chunks.plan(frames, size, chunks.STEM)) >= 4
  assert len(chunks.plan(chunks.STEM.steps(frames), size, chunks.TRUNK)) >= 2
  clip_chunks = chunks.ChunkedClip(frames, budget, *rgb_parts, {"rgb": lambda joined: joined})
  for start in range(0, frames, 13):  # blocks that do not line up with the chunks
    clip_chunks.add({"rgb": clip[:, start:start + 13]})
  joined = clip_chunks.logits()["rgb"]
  assert joined.shape == expected.shape
  np.testing.assert_allclose(joined, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_a_clip_of_other_length_than_counted_is_a_frame_count_error(rgb_parts):
  clip = random_clip(70, 3, seed=1, size=32)
  short = chunks.ChunkedClip(71, 45, *rgb_parts, {"rgb": lambda joined: joined})
  short.add({"rgb": clip})
  with pytest.raises(chunks.FrameCountError, match="70 of the 71 frames counted"):
    short.logits()
  long = chunks.ChunkedClip(69, 45, *rgb_parts, {"rgb": lambda joined: joined})
  with pytest.raises(chunks.FrameCountError, match="more than the 69 frames counted"):
    long.add({"rgb": clip})


@pytest.mark.parametrize("optimize", [True, False])  # FastI3d, and the Sonnet InceptionI3d
def test_chunked_whole_clip_logits_equal_one_pass_of_the_reference(checkpoint_dir, optimize):
  classifier = i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False,
                                   optimize=optimize)
  frames, budget = 235, 140  # residue 3: 4 stem chunks of 98 frames, 1 trunk chunk
  clip = random_clip(frames, 3, seed=7)
  expected = reference_logits(str(checkpoint_dir / "rgb_imagenet" / "model.ckpt"), clip)
  size = chunks.chunk_length(budget)
  assert len(chunks.plan(frames, size, chunks.STEM)) == 4
  assert len(chunks.plan(chunks.STEM.steps(frames), size, chunks.TRUNK)) == 1
  blocks = ({"rgb": clip[:, s:s + 16]} for s in range(0, frames, 16))
  chunked = classifier.clip_logits(blocks, frames, budget=budget)["rgb"]
  np.testing.assert_allclose(chunked, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())

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
def rgb_mixed_5c(checkpoint_dir):
  """The RGB tower cut at Mixed_5c, as a `chunks.Backbone` that keeps the whole map."""
  model = i3d.InceptionI3d(400, final_endpoint="Mixed_5c")
  i3d.load_checkpoint(model, "rgb_imagenet", checkpoint_dir=checkpoint_dir, download=False)
  return lambda clips: model(clips, is_training=False)[0].numpy()


def test_plan_covers_every_step_once_with_aligned_chunks_of_the_clips_residue():
  for frames in (120, 131, 250, 1003, 9000):
    planned = chunks.plan(frames, 200)
    kept = [step for c in planned for step in range(c.keep_start, c.keep_stop)]
    assert kept == list(range(chunks.steps(frames)))
    for c in planned:
      assert c.start % 8 == 0 and c.stop - c.start <= 200
      assert (c.stop - c.start) % 8 == frames % 8
    assert planned[0].start == 0 and planned[-1].stop == frames
  assert chunks.plan(100, 200) == [chunks.Chunk(0, 100, 0, 13)]
  with pytest.raises(UserError, match=r"budget of 64 frames \(\$I3D_CHUNK_FRAMES\) is too small"):
    chunks.plan(300, 64)


@pytest.mark.parametrize("frames", [129, 134, 139, 148])  # residues 1, 6, 3, 4
def test_joined_mixed_5c_of_chunks_equals_one_pass_of_the_reference(frames, rgb_mixed_5c,
                                                                    checkpoint_dir):
  clip = random_clip(frames, 3, seed=frames, size=32)
  expected = reference_endpoint(str(checkpoint_dir / "rgb_imagenet" / "model.ckpt"), clip,
                                "Mixed_5c")
  planned = chunks.plan(frames, chunks.MIN_BUDGET)
  assert len(planned) >= 4
  clip_chunks = chunks.ChunkedClip(frames, chunks.MIN_BUDGET, {"rgb": rgb_mixed_5c},
                                   {"rgb": lambda joined: joined})
  for start in range(0, frames, 13):  # blocks that do not line up with the chunks
    clip_chunks.add({"rgb": clip[:, start:start + 13]})
  joined = clip_chunks.logits()["rgb"]
  assert joined.shape == expected.shape
  np.testing.assert_allclose(joined, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_chunked_whole_clip_logits_equal_one_pass_of_the_reference(checkpoint_dir):
  classifier = i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False)
  frames, budget = 235, 227  # residue 3, in 2 chunks (the Mixed_5c test above runs many)
  clip = random_clip(frames, 3, seed=7)
  expected = reference_logits(str(checkpoint_dir / "rgb_imagenet" / "model.ckpt"), clip)
  assert len(chunks.plan(frames, budget)) == 2
  blocks = ({"rgb": clip[:, s:s + 16]} for s in range(0, frames, 16))
  chunked = classifier.clip_logits(blocks, frames, budget=budget)["rgb"]
  np.testing.assert_allclose(chunked, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())

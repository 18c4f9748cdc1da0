"""Resumable batch runs: the run folder (`folder`: lock, settings, per-item outcomes keyed by
id, failures, the started log) and where items are worked on (`executors`). `i3d preprocess`,
`i3d evaluate` and `i3d features` are each a function of one item run on them; see
docs/runs.md."""

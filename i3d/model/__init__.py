"""The network and its weights: `InceptionI3d`, the fast inference graph, released checkpoints.

Submodules are imported by name (`i3d.model.network`, `i3d.model.checkpoints`, ...);
`streams`, `registry` and `labels` need no TensorFlow.
"""

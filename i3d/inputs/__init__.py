"""Inputs from video, as named stages: decode (25 fps sampling) -> transforms (resize, crop,
rescale) -> flow (TV-L1) -> views (crops x windows); `cache` keeps computed inputs as `.npz`.

`settings` and `decode` need no TensorFlow; import submodules by name.
"""

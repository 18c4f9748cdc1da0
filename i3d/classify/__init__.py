"""Running a classifier over clips: `Classifier`, test-time views of a video, predict, export.

`ranking` needs no TensorFlow; import submodules by name.
"""

"""I3D: the Inflated 3D ConvNet of Carreira & Zisserman (CVPR 2017) in TensorFlow 2 / Sonnet 2."""

from i3d.labels import class_index, class_name, load_label_map

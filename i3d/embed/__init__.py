"""I3D as an embedding: endpoint features for every window of a video (`features`), and the
Fréchet and kernel video distances between sets of clips (`fvd`, `sources`).

Sits above `i3d.classify` (it uses its classifier for FVD's logits) and below `i3d.kinetics`
and `i3d.cli`. `fvd` and `sources` load TensorFlow only when clips are embedded.
"""

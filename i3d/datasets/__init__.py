"""Labelled video sets other than Kinetics, as the clips `i3d preprocess` writes into records: a
folder per class, a CSV of `path,label[,split]`, and the official UCF101 and HMDB51 split files
(`labelled`). Needs no TensorFlow."""

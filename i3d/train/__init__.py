"""Fine-tuning I3D on labelled records (`i3d train`): `TrainConfig` and `train`."""

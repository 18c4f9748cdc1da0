"""Kinetics-400/600/700: annotations, subsets, an index of local videos, downloads, evaluation.

The annotation API is here (`i3d.kinetics.read_annotations`, `select`, `Clip`, ...) and needs no
TensorFlow; `download`, `evaluation`, `metrics` and `report` are submodules, imported by name.
"""

from i3d.kinetics.annotations import (
                                      SPLITS,
                                      VERSIONS,
                                      Annotations,
                                      Clip,
                                      IndexRow,
                                      Problem,
                                      check_classes,
                                      class_counts,
                                      index_videos,
                                      local_clips,
                                      normalize_split,
                                      normalize_version,
                                      parse_filename,
                                      read_annotations,
                                      select,
                                      usable,
                                      write_annotations,
)

__all__ = ["SPLITS", "VERSIONS", "Annotations", "Clip", "IndexRow", "Problem", "check_classes",
           "class_counts", "index_videos", "local_clips", "normalize_split", "normalize_version",
           "parse_filename", "read_annotations", "select", "usable", "write_annotations"]

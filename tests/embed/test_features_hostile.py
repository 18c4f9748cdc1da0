"""A features folder holding foreign files named like the toolkit's (issue 23), and ids that
would name files outside it."""

import os

import pytest

from i3d.embed import features
from i3d.errors import UserError


def test_a_foreign_progress_file_is_redone_not_a_traceback(tmp_path):
  (tmp_path / "v1.json").write_text("[1, 2]")
  os.mkfifo(tmp_path / "v2.json")
  assert not features._finished(tmp_path, "v1", {"settings": 1})
  assert not features._finished(tmp_path, "v2", {"settings": 1})


@pytest.mark.parametrize("vid", ["", ".hidden", "../up", "a/../b", "/abs", "a//b", "a/", " a",
                                 "a\\b", "a/.b"])
def test_ids_that_would_leave_the_output_folder_are_refused(vid):
  with pytest.raises(UserError, match="cannot name output files after"):
    features.check_jobs([(vid, "source")])


def test_plain_and_class_folder_ids_are_accepted_once():
  features.check_jobs([("clip", "a"), ("walk/a.mp4", "b"), ("run/x/y", "c")])
  with pytest.raises(UserError, match="would both be written as walk/a"):
    features.check_jobs([("walk/a", "a"), ("walk/a", "b")])

"""A features folder holding foreign files named like the toolkit's (issue 23)."""

import os

from i3d.embed import features


def test_a_foreign_progress_file_is_redone_not_a_traceback(tmp_path):
  (tmp_path / "v1.json").write_text("[1, 2]")
  os.mkfifo(tmp_path / "v2.json")
  assert not features._finished(tmp_path, "v1", {"settings": 1})
  assert not features._finished(tmp_path, "v2", {"settings": 1})

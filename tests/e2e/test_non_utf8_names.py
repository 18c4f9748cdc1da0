"""`i3d preprocess` on a file whose name is not UTF-8 (OpenCV segfaulted on such names: exit
139); the output names the file by its bytes (issue 15, item 6)."""

import os
import subprocess
import sys

from tests.support.clips import REPO
from tests.support.videos import write_indexed_video


def test_preprocess_a_non_utf8_file_name(tmp_path):
  write_indexed_video(tmp_path / "v.avi", 4, 25)
  os.rename(tmp_path / "v.avi", os.fsencode(tmp_path) + b"/bad\xff.avi")
  run = subprocess.run([sys.executable, "-m", "i3d.cli", "preprocess", b"bad\xff.avi",
                        "--flow_backend", "opencv"], cwd=tmp_path, capture_output=True,
                       timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
  assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
  assert run.stdout.startswith(b"bad\xff_inputs.npz: rgb (1, 4, 224, 224, 3)")
  assert (os.fsencode(tmp_path) + b"/bad\xff_inputs.npz") in map(os.fsencode, tmp_path.iterdir())

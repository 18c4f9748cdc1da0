"""The filter on standard error holds for the processes started under it (Beam's local workers)."""

import os
import subprocess

from i3d._util import stderr


def test_lines_written_by_children_and_this_process_are_filtered(capfd):
  with stderr.filtered(lambda line: line.startswith(b"INFO:")):
    subprocess.run(["sh", "-c", "printf 'INFO:x:noise\\nkept 1\\nINFO:y:more\\n' >&2"],
                   check=True)
    os.write(2, b"INFO:z:ours\nkept 2\nno line end")
  os.write(2, b"; INFO:after\n")
  assert capfd.readouterr().err == "kept 1\nkept 2\nno line end; INFO:after\n"

"""Library defaults: TensorFlow starts without its C++ chatter unless I3D_TF_LOGS asks for it."""

import os
import subprocess
import sys

import pytest

from i3d._util import env

NOISE = ("cuInit", "oneDNN custom operations", "absl::InitializeLog", "cuda drivers",
         "cpu_feature_guard")
START_TF = ("from i3d._util import env; env.set_library_defaults(); import tensorflow as tf; "
            "print(int(tf.reduce_sum(tf.ones([3]))))")


def test_tensorflow_starts_quietly():
  environ = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "I3D_TF"))}
  result = subprocess.run([sys.executable, "-c", START_TF], capture_output=True, text=True,
                          timeout=300, env=environ)
  assert result.returncode == 0 and result.stdout == "3\n"
  assert not [line for line in result.stderr.splitlines() if any(n in line for n in NOISE)]


def test_import_changes_no_variable_and_installs_no_hook():
  code = ("import os, sys, cv2; "  # OpenCV sets LD_LIBRARY_PATH on import itself
          "before = (dict(os.environ), list(sys.meta_path)); import i3d, "
          "i3d.kinetics, i3d.inputs.decode; from i3d.cli import main; "
          "print(before == (dict(os.environ), list(sys.meta_path)), i3d.__version__)")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split()[0] == "True"


def test_failed_import_replays_what_was_held_back():
  code = ("import os, sys; from i3d._util import env\n"
          "try:\n"
          "  with env._stderr_held():\n"
          "    os.write(2, b'held line\\n'); raise ImportError('broken')\n"
          "except ImportError:\n"
          "  pass\n"
          "with env._stderr_held():\n"
          "  os.write(2, b'dropped line\\n')\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
  assert result.returncode == 0
  assert "held line" in result.stderr and "dropped line" not in result.stderr


@pytest.mark.parametrize("value,expected", [("1", True), ("yes", True), ("0", False),
                                            ("", False)])
def test_boolean_variables(monkeypatch, value, expected):
  monkeypatch.setenv("I3D_OFFLINE", value)
  monkeypatch.setenv("I3D_TF_LOGS", value)
  assert env.offline() is expected and env.tf_logs() is expected
  monkeypatch.setenv("I3D_PROGRESS", value)
  assert env.progress() is (expected if value else None)

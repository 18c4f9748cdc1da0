"""A worker started through a shell, as Beam's local runner starts its workers
(`sh -c 'python -m ...'`), dies with its launcher, not with the shell (issue 23, item 10)."""

import os
import shlex
import signal
import subprocess
import sys
import time

from tests.support import procs
from tests.support.clips import REPO

WORKER = ("import sys, time\n"
          "time.sleep(float(sys.argv[1]))\n"
          "from i3d._util import lifeline\n"
          "lifeline.die_with_parent()\n"
          "print('watching', flush=True)\n"
          "time.sleep(600)\n")
# Starts the worker as Beam does (`subprocess.Popen(COMMAND, shell=True)`), says so and waits.
LAUNCHER = ("import subprocess, sys, time\n"
            "subprocess.Popen(sys.argv[1], shell=True)\n"
            "print('started', flush=True)\n"
            "time.sleep(600)\n")


def launch(delay: float) -> subprocess.Popen:
  """A launcher (in a session of its own) whose worker calls the lifeline after `delay` s; the
  worker prints `watching` on the launcher's stdout once it has."""
  command = f"{shlex.quote(sys.executable)} -c {shlex.quote(WORKER)} {delay}"
  launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, command], cwd=REPO,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
  assert launcher.stdout.readline() == "started\n"
  return launcher


def processes(group: int) -> list[int]:
  return procs.live("group", group)


def end(launcher: subprocess.Popen) -> list[int]:
  """Kills the launcher alone (`kill -9`); returns what is left of its session after 10 s."""
  launcher.kill()
  launcher.wait()
  deadline = time.monotonic() + 10
  while processes(launcher.pid) and time.monotonic() < deadline:
    time.sleep(0.1)
  return processes(launcher.pid)


def kill_session(launcher: subprocess.Popen) -> None:
  """Clean-up: kills whatever is left of the launcher's session."""
  try:
    os.killpg(launcher.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass


def test_a_worker_behind_a_shell_dies_with_its_launcher():
  launcher = launch(0)
  try:
    assert launcher.stdout.readline() == "watching\n"
    assert len(processes(launcher.pid)) == 3  # the launcher, the shell and the worker
    assert end(launcher) == []
  finally:
    kill_session(launcher)


def test_a_worker_whose_launcher_died_before_it_watched_ends_at_once():
  launcher = launch(1.0)
  try:
    assert end(launcher) == []
    assert launcher.stdout.read() == ""  # it never watched a launcher that was gone
  finally:
    kill_session(launcher)

"""Executors: the same outputs in this process and in a pool; a worker that dies is an output of
`died`, not a hang or a lost item."""

import os
import signal

import pytest

from i3d._util import cpu
from i3d.runs import executors


def square(x: int) -> int:
  return x * x


def die_on_three(x: int) -> int:
  if x == 3:
    os.kill(os.getpid(), signal.SIGKILL)
  return x


def test_in_process_and_pool_give_the_same_outputs():
  assert list(executors.in_process(square, [1, 2, 3])) == [1, 4, 9]
  assert executors.process_pool(1) is executors.in_process
  assert sorted(executors.process_pool(2)(square, [1, 2, 3, 4])) == [1, 4, 9, 16]
  assert executors.threads_per_worker(1) == cpu.cores() >= 1
  assert executors.threads_per_worker(10 * cpu.cores()) == 1


def test_a_dead_worker_is_reported_through_died():
  outputs = list(executors.process_pool(2, died=lambda x, e: ("died", x))(die_on_three, [3]))
  assert outputs == [("died", 3)]
  with pytest.raises(Exception, match="terminated abruptly"):
    list(executors.process_pool(2)(die_on_three, [3]))

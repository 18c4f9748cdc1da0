"""Executors: the same outputs in this process and in a pool (a pool worker that dies is an
output of `died`: tests/kinetics/test_preprocess_hostile.py)."""

from i3d._util import cpu
from i3d.runs import executors


def square(x: int) -> int:
  return x * x


def test_in_process_and_pool_give_the_same_outputs():
  assert list(executors.in_process(square, [1, 2, 3])) == [1, 4, 9]
  assert executors.process_pool(1) is executors.in_process
  assert sorted(executors.process_pool(2)(square, [1, 2, 3, 4])) == [1, 4, 9, 16]
  assert executors.threads_per_worker(1) == cpu.cores() >= 1
  assert executors.threads_per_worker(10 * cpu.cores()) == 1


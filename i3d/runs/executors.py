"""Where a run's items are worked on: in this process, in a pool of processes sharing the cores,
or on Apache Beam (`i3d.pipelines.options.beam_executor`). An executor maps a picklable function
over items and yields its outputs as they finish; this is also the one place worker threads are
limited (the cores are counted by `i3d._util.cpu.cores`)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Optional, TypeVar

from i3d._util import cpu, lifeline

ItemT = TypeVar("ItemT")
OutT = TypeVar("OutT")
Executor = Callable[[Callable[[ItemT], OutT], Sequence[ItemT]], Iterable[OutT]]


def threads_per_worker(workers: int) -> int:
  """Each of `workers` local worker processes' share of the cores."""
  return max(1, cpu.cores() // workers)


def limit_threads(threads: Optional[int]) -> None:
  """Keeps this process's TensorFlow and OpenCV to `threads` threads (when given), so local
  workers share the cores instead of oversubscribing them. Call it before TensorFlow runs."""
  if threads is None:
    return
  import cv2  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  cv2.setNumThreads(threads)
  try:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
  except RuntimeError:  # TensorFlow already ran in this process: it keeps its pools
    pass


def _init_worker(threads: int) -> None:
  """A pool worker dies with its launcher (`lifeline`) and keeps to its share of the cores."""
  lifeline.die_with_parent()
  limit_threads(threads)


def in_process(function: Callable[[ItemT], OutT], items: Sequence[ItemT]) -> Iterator[OutT]:
  """`function` of each item, one after the other, in this process."""
  yield from map(function, items)


def process_pool(workers: int, died: Optional[Callable[[ItemT, Exception], OutT]] = None
                 ) -> Executor:
  """An executor running `workers` spawned processes, each limited to its share of the cores and
  dying with this process (one worker runs in this process). `died(item, error)` is the output
  of an item whose worker process died (killed, out of memory); without it the error is
  raised."""
  if workers <= 1:
    return in_process

  def run(function: Callable[[ItemT], OutT], items: Sequence[ItemT]) -> Iterator[OutT]:
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
        initargs=(threads_per_worker(workers),)) as pool:
      futures = {pool.submit(function, item): item for item in items}
      try:
        for future in concurrent.futures.as_completed(futures):
          try:
            yield future.result()
          except BrokenProcessPool as e:
            if died is None:
              raise
            yield died(futures[future], e)
      finally:
        for future in futures:
          future.cancel()
  return run

"""Retrying an action whose failures may be transient, with exponential backoff."""

import time
from collections.abc import Callable
from typing import TypeVar

from i3d.errors import UserError

T = TypeVar("T")


def retry(attempt: Callable[[int], T], *, retries: int, backoff: float,
          transient: Callable[[Exception], bool]) -> T:
  """Returns `attempt(n)` for the first try n = 1, 2, ... that does not raise.

  A failure for which `transient(error)` is false, or the failure of try `retries + 1`, is
  raised; between tries the wait doubles from `backoff` seconds.
  """
  if retries < 0:
    raise UserError(f"retries must be 0 or more, got {retries}")
  for n in range(1, retries + 2):
    try:
      return attempt(n)
    except Exception as e:  # noqa: BLE001 - `transient` decides, anything else is re-raised
      if n > retries or not transient(e):
        raise
      time.sleep(backoff * 2 ** (n - 1))
  raise AssertionError("unreachable: the last try returns or raises")

"""Retries with exponential backoff: transient failures retried, others raised at once."""

import pytest

from i3d._util import retry as retry_module
from i3d._util.retry import retry


class Flaky(Exception):
  pass


def test_transient_failures_are_retried_with_doubling_waits(monkeypatch):
  sleeps, tries = [], []
  monkeypatch.setattr(retry_module.time, "sleep", sleeps.append)

  def attempt(n):
    tries.append(n)
    if n < 3:
      raise Flaky()
    return "done"

  assert retry(attempt, retries=5, backoff=0.5, transient=lambda e: isinstance(e, Flaky)) == "done"
  assert tries == [1, 2, 3] and sleeps == [0.5, 1.0]


def test_last_failure_and_permanent_failures_are_raised(monkeypatch):
  monkeypatch.setattr(retry_module.time, "sleep", lambda s: None)
  tries = []

  def always(n):
    tries.append(n)
    raise Flaky()

  with pytest.raises(Flaky):
    retry(always, retries=2, backoff=1.0, transient=lambda e: True)
  assert tries == [1, 2, 3]
  tries.clear()
  with pytest.raises(Flaky):
    retry(always, retries=2, backoff=1.0, transient=lambda e: False)
  assert tries == [1]

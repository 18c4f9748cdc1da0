"""Injected failures for Beam pipelines: bundles that fail after their side effects."""

from collections.abc import Callable
from pathlib import Path

import pytest


def fail_once_after(monkeypatch: pytest.MonkeyPatch, dofn: type, name: Callable[[object], str],
                    raised: Path) -> None:
  """Makes `dofn.process` raise after it has processed an element, the first time it sees that
  element (named by `name`); a file `raised/NAME` marks each failure made."""
  process = dofn.process
  raised.mkdir(parents=True, exist_ok=True)

  def process_then_fail_once(self, element):
    yield from process(self, element)
    marker = raised / name(element)
    if not marker.exists():
      marker.touch()
      raise RuntimeError(f"injected failure after processing {marker.name}")

  monkeypatch.setattr(dofn, "process", process_then_fail_once)

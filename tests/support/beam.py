"""Injected failures for Beam pipelines: bundles that fail after their side effects."""

from collections.abc import Callable
from pathlib import Path
from typing import Optional

import pytest


def fail_once_after(monkeypatch: pytest.MonkeyPatch, dofn: type,
                    name: Callable[[object], Optional[str]], raised: Path) -> None:
  """Makes `dofn.process` raise after it has processed an element, the first time it sees that
  element (named by `name`; None: never after this element); a file `raised/NAME` marks each
  failure made."""
  process = dofn.process
  raised.mkdir(parents=True, exist_ok=True)

  def process_then_fail_once(self, element):
    yield from process(self, element)
    named = name(element)
    if named is not None and not (raised / named).exists():
      (raised / named).touch()
      raise RuntimeError(f"injected failure after processing {named}")

  monkeypatch.setattr(dofn, "process", process_then_fail_once)

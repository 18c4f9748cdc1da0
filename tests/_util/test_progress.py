"""Progress output: one facility on stderr, shown on terminals or when forced, hidden inside an
outer bar, off with I3D_PROGRESS=0 (what `--quiet` sets)."""

import pytest

from i3d._util import progress


def _run_bars(count: int = 3) -> None:
  with progress.bar(count, "working", "step") as bar:
    for _ in range(count):
      bar.update()
  progress.note("compiling something (first call)...")


def test_forced_on_shows_bars_and_notes(monkeypatch, capsys):
  monkeypatch.setenv("I3D_PROGRESS", "1")
  _run_bars()
  err = capsys.readouterr().err
  assert "working:" in err and "/3 [" in err and "step/s" in err
  assert "compiling something (first call)..." in err


@pytest.mark.parametrize("value", ["0", ""])
def test_off_when_quiet_or_not_a_terminal(monkeypatch, capsys, value):
  monkeypatch.setenv("I3D_PROGRESS", value)  # "": decided by stderr, which pytest captures
  _run_bars()
  out = capsys.readouterr()
  assert out.err == "" and out.out == ""


def test_outer_bar_hides_inner_bars_and_notes_until_closed(monkeypatch, capsys):
  monkeypatch.setenv("I3D_PROGRESS", "1")
  outer = progress.outer(2, "videos", "video")
  _run_bars()
  outer.update(2)
  outer.close()
  err = capsys.readouterr().err
  assert "videos" in err and "2/2" in err
  assert "working" not in err and "compiling" not in err
  _run_bars()
  assert "working" in capsys.readouterr().err  # shown again once the outer bar closed

"""CPU flags and the per-CPU XLA cache folder."""

from pathlib import Path

from i3d._util import cpu, env


def test_cache_folder_is_per_instruction_set(monkeypatch, tmp_path):
  monkeypatch.delenv("I3D_XLA_CACHE_DIR", raising=False)
  info = tmp_path / "cpuinfo"
  info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
  monkeypatch.setattr(cpu, "CPUINFO", info)
  avx2 = env.xla_cache_dir()
  info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
  avx512 = env.xla_cache_dir()
  assert avx2 is not None and avx512 is not None
  assert avx2.parent == avx512.parent == Path.home() / ".cache" / "i3d" / "xla"
  assert avx2 != avx512
  assert cpu.cpu_flags(info) == frozenset({"fpu", "sse2", "avx2", "avx512f"})


def test_explicit_folder_or_none(monkeypatch, tmp_path):
  monkeypatch.setenv("I3D_XLA_CACHE_DIR", str(tmp_path / "x"))
  assert env.xla_cache_dir() == tmp_path / "x"
  monkeypatch.setenv("I3D_XLA_CACHE_DIR", "")
  assert env.xla_cache_dir() is None

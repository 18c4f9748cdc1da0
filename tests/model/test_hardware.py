"""CPU capability detection for reduced precision (`i3d.model.hardware`) and its warning."""

import logging

import pytest
import tensorflow as tf

import i3d
from i3d._util import cpu
from i3d.model import hardware

ZEN4 = "fpu avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni"
SKYLAKE_X = "fpu avx2 fma avx512f avx512bw avx512_vnni"
HASWELL = "fpu sse4_2 avx avx2 fma"


def cpuinfo(tmp_path, flags: str, key: str = "flags"):
  path = tmp_path / "cpuinfo"
  path.write_text(f"processor\t: 0\nmodel name\t: Some CPU\n{key}\t\t: {flags}\n\n"
                  f"processor\t: 1\n{key}\t\t: {flags}\n")
  return path


def test_flags_are_read_from_cpuinfo_x86_and_arm(tmp_path):
  assert cpu.cpu_flags(cpuinfo(tmp_path, ZEN4)) == frozenset(ZEN4.split())
  arm = cpu.cpu_flags(cpuinfo(tmp_path, "fp asimd sve bf16 i8mm", key="Features"))
  assert hardware.is_native("bfloat16", arm)
  assert cpu.cpu_flags(tmp_path / "absent") is None


@pytest.mark.parametrize("flags, native", [
    (ZEN4, {"float32", "bfloat16"}), (SKYLAKE_X, {"float32"}), (HASWELL, {"float32"}),
    ("avx512f amx_bf16 amx_fp16 avx512_fp16", {"float32", "bfloat16", "float16"})])
def test_native_precisions_follow_the_flags(flags, native):
  flags = frozenset(flags.split())
  assert {p for p in hardware.PRECISIONS if hardware.is_native(p, flags)} == native


def test_emulated_precision_warning_names_the_missing_flags_and_the_cost():
  avx512 = hardware.emulation_warning("bfloat16", frozenset(SKYLAKE_X.split()))
  assert avx512 == ("bfloat16 is emulated on this CPU (no avx512_bf16 or amx_bf16): expect it to "
                    "run about 4x slower than float32; use --precision float32 here, bfloat16 on "
                    "a CPU or GPU that has it")
  assert "about 30x slower" in hardware.emulation_warning("bfloat16", frozenset(HASWELL.split()))
  assert "avx512_fp16 or amx_fp16" in hardware.emulation_warning("float16", frozenset(ZEN4.split()))
  assert hardware.emulation_warning("bfloat16", frozenset(ZEN4.split())) is None
  assert hardware.emulation_warning("float32", frozenset(HASWELL.split())) is None
  assert hardware.emulation_warning("bfloat16", None) is None  # unknown CPU: nothing to say


@pytest.mark.parametrize("flags, pays", [
    (ZEN4, True), (SKYLAKE_X, False), (HASWELL, False), (ZEN4 + " amx_bf16 amx_tile", False)])
def test_winograd_is_chosen_where_it_was_measured_faster(flags, pays):
  assert hardware.bfloat16_winograd_pays(frozenset(flags.split())) is pays
  assert not hardware.bfloat16_winograd_pays(None)


@pytest.mark.parametrize("flags, warned", [(SKYLAKE_X, True), (ZEN4, False)])
def test_classifier_logs_the_warning_on_cpus_without_bfloat16(checkpoint_dir, tmp_path, caplog,
                                                              monkeypatch, flags, warned):
  monkeypatch.setattr(cpu, "CPUINFO", cpuinfo(tmp_path, flags))
  with caplog.at_level(logging.WARNING):
    classifier = i3d.load_classifier("rgb", checkpoint_dir=checkpoint_dir, download=False,
                                     precision="bfloat16")
  expected = hardware.emulation_warning("bfloat16", frozenset(flags.split()))
  if tf.config.list_physical_devices("GPU"):
    expected, warned = None, False  # a GPU runs it: the CPU's flags do not matter
  assert classifier.precision_warning == expected
  assert (f"i3d: warning: {expected}" in caplog.messages) == warned

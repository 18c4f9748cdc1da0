"""Which reduced precisions this CPU computes natively, from its feature flags (no TensorFlow).

bfloat16 convolutions are fast only on CPUs with AVX512_BF16 (AMD Zen 4 and later, Intel Cooper
Lake) or AMX-BF16 (Intel Sapphire Rapids and later), float16 only with AVX512_FP16 or AMX-FP16
(Intel Sapphire / Granite Rapids). Elsewhere TensorFlow emulates them, slower than float32; the
costs below were measured on this project's machine with oneDNN's bf16 instructions turned off
(see BENCHMARKS.md).
"""

from typing import Optional

PRECISIONS = ("float32", "bfloat16", "float16")  # the compute precisions FastI3d offers
NATIVE_FLAGS = {  # precision -> CPU flags (x86 /proc/cpuinfo names; arm64 "Features") giving it
    "bfloat16": ("avx512_bf16", "amx_bf16", "bf16"),
    "float16": ("avx512_fp16", "amx_fp16"),
}
EMULATED_COST = {  # (precision, CPU has AVX-512) -> about time / float32 time, RGB 16-32 frames
    ("bfloat16", True): 4,  # oneDNN's AVX-512 bf16 emulation
    ("bfloat16", False): 30,  # TensorFlow's generic (Eigen) bf16 kernels
    ("float16", True): 11, ("float16", False): 11,  # Eigen float16 kernels
}


def is_native(precision: str, flags: frozenset[str]) -> bool:
  """Whether a CPU with `flags` computes `precision` natively (float32 always does)."""
  return precision not in NATIVE_FLAGS or any(f in flags for f in NATIVE_FLAGS[precision])


def emulation_warning(precision: str, flags: Optional[frozenset[str]]) -> Optional[str]:
  """One line saying that `precision` would be emulated on a CPU with `flags` and what it costs;
  None when it is native or the flags are unknown."""
  if flags is None or is_native(precision, flags):
    return None
  slower = EMULATED_COST[precision, "avx512f" in flags]
  return (f"{precision} is emulated on this CPU (no {' or '.join(NATIVE_FLAGS[precision][:2])}): "
          f"expect it to run about {slower}x slower than float32; use --precision float32 here, "
          f"{precision} on a CPU or GPU that has it")


def bfloat16_winograd_pays(flags: Optional[frozenset[str]]) -> bool:
  """Whether Winograd's transform along time (`i3d.model.fast.TemporalWinogradConv`) speeds up
  bfloat16 convolutions on a CPU with `flags`: measured on AVX512_BF16 (a third fewer products
  for frame-wide additions; BENCHMARKS.md). Not chosen with AMX, whose products are several times
  cheaper so the additions may cost more than they save (not measured), nor where bf16 is
  emulated (the warning says to use float32) or the flags are unknown."""
  return flags is not None and "avx512_bf16" in flags and "amx_bf16" not in flags

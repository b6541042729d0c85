"""What this CPU computes natively, from /proc/cpuinfo's feature flags (none known elsewhere),
and how many of its cores this process may use.

Two choices depend on it. onnxruntime's x86 kernels for uint8 x int8 products add each pair of
products in 16 bits unless the CPU has VNNI, so weights using all 8 bits can overflow them
(service.runtime runs such graphs unfused). Training in bfloat16 pays only where the CPU has
bfloat16 instructions; emulated, a step costs about ten times float32's (training's precision).
"""

import os
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86, x86, Arm
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})
X86 = ("x86_64", "amd64", "i686", "i386")


def flags() -> frozenset[str]:
    """The first processor's feature flags (x86 `flags`, Arm `Features`); empty if unknown."""
    if not CPUINFO.is_file():
        return frozenset()
    for line in CPUINFO.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 arithmetic instructions."""
    return bool(flags() & BFLOAT16_FLAGS)


def int8_pairs_in_16_bits(machine: str = platform.machine()) -> bool:
    """Whether onnxruntime's uint8 x int8 kernels sum pairs of products in 16 bits here: on
    x86 without VNNI, where 2 x 255 x 127 overflows and 7-bit weights (2 x 255 x 64) do not."""
    return machine.lower() in X86 and not flags() & VNNI_FLAGS


def usable_cores() -> int:
    """The cores this process may run on (its affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0))

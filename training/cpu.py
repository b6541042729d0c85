"""What this CPU computes natively, from /proc/cpuinfo's feature flags (none known elsewhere).

Two choices depend on it: training in bfloat16 pays only where the CPU has bfloat16
instructions (emulated, a step costs about ten times float32's), and onnxruntime's int8
convolutions sum in 32 bits only with VNNI (without it, pairs of products meet in 16 bits).
"""

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BFLOAT16 = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86, x86, Arm
VNNI = frozenset({"avx512_vnni", "avx_vnni"})


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
    return bool(flags() & BFLOAT16)


def has_vnni() -> bool:
    """Whether this x86 CPU has VNNI (int8 dot products summed in 32 bits)."""
    return bool(flags() & VNNI)

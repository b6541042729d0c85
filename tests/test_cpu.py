"""service.cpu on cpuinfo files as x86 and Arm Linux write them, and on narrowed affinities."""

import os
import subprocess
import sys

import pytest

from service import cpu

X86_AVX2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx fma avx2 vaes\n\n"
X86_SAPPHIRE = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 amx_bf16\n"
X86_ALDER = "processor\t: 0\nflags\t\t: fpu avx2 avx_vnni\n"
ARM_V9 = "processor\t: 0\nBogoMIPS\t: 2000.00\nFeatures\t: fp asimd asimddp bf16 i8mm\n"


@pytest.mark.parametrize(
    ("cpuinfo", "machine", "bfloat16", "int8_pairs_in_16_bits"),
    [
        (X86_AVX2, "x86_64", False, True),
        (X86_SAPPHIRE, "x86_64", True, False),
        (X86_ALDER, "x86_64", False, False),
        (ARM_V9, "aarch64", True, False),
        ("processor\t: 0\n", "x86_64", False, True),  # no flags line: assume the worst
        (None, "AMD64", False, True),  # no /proc/cpuinfo (not Linux)
        (None, "arm64", False, False),
    ],
)
def test_what_the_cpu_computes_natively(
    cpuinfo, machine, bfloat16, int8_pairs_in_16_bits, tmp_path, monkeypatch
):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(cpu, "CPUINFO", path)

    assert cpu.native_bfloat16() is bfloat16
    assert cpu.int8_pairs_in_16_bits(machine) is int8_pairs_in_16_bits


def test_the_first_processors_flags_are_read(tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text(X86_AVX2 + X86_SAPPHIRE.replace("processor\t: 0", "processor\t: 1"))
    monkeypatch.setattr(cpu, "CPUINFO", path)

    assert cpu.flags() == {"fpu", "sse2", "avx", "fma", "avx2", "vaes"}


def test_usable_cores_follow_the_process_affinity():
    """A container or taskset that narrows the affinity narrows the threads offline work uses."""
    assert cpu.usable_cores() == len(os.sched_getaffinity(0))
    narrowed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from service import cpu; print(cpu.usable_cores())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert narrowed.stdout.strip() == "1"

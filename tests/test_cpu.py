"""training.cpu on cpuinfo files as x86 and Arm Linux write them."""

import pytest

from training import cpu

X86_AVX2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx fma avx2 vaes\n\n"
X86_SAPPHIRE = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 amx_bf16\n"
X86_ALDER = "processor\t: 0\nflags\t\t: fpu avx2 avx_vnni\n"
ARM_V9 = "processor\t: 0\nBogoMIPS\t: 2000.00\nFeatures\t: fp asimd asimddp bf16 i8mm\n"


@pytest.mark.parametrize(
    ("cpuinfo", "bfloat16", "vnni"),
    [
        (X86_AVX2, False, False),
        (X86_SAPPHIRE, True, True),
        (X86_ALDER, False, True),
        (ARM_V9, True, False),
        ("processor\t: 0\n", False, False),  # no flags line
        (None, False, False),  # no /proc/cpuinfo (not Linux)
    ],
)
def test_what_the_cpu_computes_natively(cpuinfo, bfloat16, vnni, tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(cpu, "CPUINFO", path)

    assert (cpu.native_bfloat16(), cpu.has_vnni()) == (bfloat16, vnni)


def test_the_first_processors_flags_are_read(tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text(X86_AVX2 + X86_SAPPHIRE.replace("processor\t: 0", "processor\t: 1"))
    monkeypatch.setattr(cpu, "CPUINFO", path)

    assert cpu.flags() == {"fpu", "sse2", "avx", "fma", "avx2", "vaes"}

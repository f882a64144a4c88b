"""usedge._cpu: the instruction set the int8 kernels use, with oneDNN's ONEDNN_MAX_CPU_ISA cap applied."""
import pytest

import usedge._cpu as cpu


@pytest.mark.parametrize("flags,isa,vnni", [
    ({"sse4_1", "avx2", "avx512f", "avx512_vnni"}, "avx512_vnni", True),
    ({"sse4_1", "avx2", "avx_vnni"}, "avx_vnni", True),
    ({"sse4_1", "avx2", "avx512f"}, "avx512", False),     # AVX-512 without VNNI saturates too
    ({"sse4_1", "avx2"}, "avx2", False),                  # the AMD EPYC of the issue
    ({"sse4_1"}, "sse4", False),
])
def test_native_isa_and_vnni_from_cpuinfo_flags(monkeypatch, flags, isa, vnni):
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: ("test CPU", flags))
    cpu._isa.cache_clear()
    try:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        got = cpu.cpu_isa()
        assert (got.isa, got.vnni, got.cap) == (isa, vnni, None) and got.label == isa
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
        capped = cpu.cpu_isa()
        assert not capped.vnni and capped.native == isa
        assert capped.isa == ("sse4" if isa == "sse4" else "avx2")
        assert (capped.cap is not None) == (isa != capped.isa) and "emulated" in capped.label or capped.cap is None
        assert cpu.isa_for("onnxruntime") == got        # MLAS ignores the oneDNN cap
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI")
        assert cpu.cpu_isa().vnni == vnni               # a cap above the CPU changes nothing
    finally:
        cpu._isa.cache_clear()


def test_this_machine_is_described():
    here = cpu.native_isa()
    assert here.isa in ("avx512_vnni", "avx_vnni", "avx512", "avx2", "sse4", "other")
    assert here.to_dict()["label"] == here.label


def test_amx_is_reported_and_capped(monkeypatch):
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: ("test Xeon", {"avx2", "avx512f", "avx512_vnni", "amx_int8"}))
    cpu._isa.cache_clear()
    try:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        here = cpu.cpu_isa()
        assert (here.isa, here.vnni, here.amx, here.label) == ("avx512_vnni", True, True, "avx512_vnni+amx")
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI")   # VNNI kept, tiles off
        no_tiles = cpu.cpu_isa()
        assert (no_tiles.vnni, no_tiles.amx, no_tiles.cap) == (True, False, "AVX512_CORE_VNNI")
        assert "emulated" in no_tiles.label
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
        assert not cpu.cpu_isa().amx and not cpu.cpu_isa().vnni
        assert cpu.isa_for("onnxruntime").amx                           # MLAS ignores the cap
    finally:
        cpu._isa.cache_clear()

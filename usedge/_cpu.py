"""What this CPU can do for INT8, as the runtimes will see it: the instruction set that decides whether an
int8 dot product is exact (VNNI) or saturates (AVX2 / AVX-512 without VNNI: ``vpmaddubsw`` adds two
u8 x s8 products into an int16 that clips at 32 767).

OpenVINO's and ONNX Runtime's documentation both name this (OpenVINO: "Saturation (overflow) issue"; ONNX
Runtime: ``reduce_range``): a graph whose int8 weights use the full [-127, 127] can compute wrong results on
a CPU without VNNI. 7-bit weights ([-64, 63]) cannot overflow there: 2 x 255 x 64 = 32 640.

OpenVINO's CPU plugin obeys oneDNN's ``ONEDNN_MAX_CPU_ISA``: ``ONEDNN_MAX_CPU_ISA=AVX2`` on a VNNI machine
runs the non-VNNI kernels, which reproduces the saturation (measured: the packaged default's IUGC error went
from 10.84 to 11.88 px). :func:`cpu_isa` reports the ISA the runtimes will use, cap included. No third-party
import: usable from the scanner runtime.
"""
from __future__ import annotations

import functools
import os
import platform
from dataclasses import asdict, dataclass

#: oneDNN ISA names (``ONEDNN_MAX_CPU_ISA``) in increasing order; those from AVX2_VNNI on have VNNI
ONEDNN_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
               "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_AMX", "AVX10_1_512_AMX", "AVX512_CORE_FP16",
               "AVX10_1_512_AMX_FP16", "ALL")
_VNNI_CAPS = {"AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX10_1_512",
              "AVX512_CORE_AMX", "AVX10_1_512_AMX", "AVX512_CORE_FP16", "AVX10_1_512_AMX_FP16", "ALL"}
#: /proc/cpuinfo flags that give an exact int8 dot product (u8 x s8 into int32)
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
#: caps under which oneDNN still uses AMX tiles (int8 matrix units: Sapphire Rapids and later Xeons)
_AMX_CAPS = {"AVX512_CORE_AMX", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "ALL"}


@dataclass(frozen=True)
class CpuIsa:
    """The int8-relevant facts of this CPU: ``isa`` is the best of avx512_vnni / avx_vnni / avx512 / avx2 / sse4 /
    other (the runtimes' view, ``ONEDNN_MAX_CPU_ISA`` applied), ``vnni`` whether int8 dot products are exact,
    ``native`` the ISA without the cap, ``cap`` the cap when one is set, ``amx`` whether OpenVINO's int8 (and,
    unless told f32, its float) layers run on AMX tiles: a large share of int8's speed-up on such a Xeon."""

    model: str
    machine: str
    isa: str
    vnni: bool
    native: str
    cap: str | None = None
    amx: bool = False

    @property
    def label(self) -> str:
        """``avx2 (emulated on avx512_vnni: ONEDNN_MAX_CPU_ISA=AVX2)``, ``avx512_vnni+amx`` or ``avx512_vnni``."""
        isa = self.isa + ("+amx" if self.amx else "")
        return isa if not self.cap else f"{isa} (emulated on {self.native}: ONEDNN_MAX_CPU_ISA={self.cap})"

    def to_dict(self) -> dict:
        return asdict(self) | {"label": self.label}


def _cpuinfo() -> tuple[str, set[str]]:
    try:
        text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
    except OSError:
        return platform.processor() or "unknown", set()
    model, flags = "unknown", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model, flags


def _native_isa(flags: set[str]) -> str:
    if "avx512_vnni" in flags or "amx_int8" in flags:
        return "avx512_vnni"
    if "avx_vnni" in flags:
        return "avx_vnni"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    if "sse4_1" in flags:
        return "sse4"
    return "other"


def _capped(native: str, cap: str) -> tuple[str, bool]:
    """The ISA and VNNI flag oneDNN uses under ``ONEDNN_MAX_CPU_ISA=cap`` on a CPU whose best is ``native``."""
    vnni_native = native in ("avx512_vnni", "avx_vnni")
    if cap in _VNNI_CAPS:
        return native, vnni_native
    if cap == "AVX512_CORE":
        return ("avx512" if native in ("avx512_vnni", "avx512") else native if native != "avx_vnni" else "avx2"), False
    if cap == "AVX2":
        return ("avx2" if native != "sse4" else native), False
    return "sse4", False


@functools.lru_cache(maxsize=None)
def _isa(cap: str | None) -> CpuIsa:
    model, flags = _cpuinfo()
    native = _native_isa(flags)
    vnni = any(f in flags for f in VNNI_FLAGS)
    isa, amx = native, "amx_int8" in flags
    if cap and cap in ONEDNN_ISAS:
        isa, vnni = _capped(native, cap)
        amx = amx and cap in _AMX_CAPS
    return CpuIsa(model=model, machine=platform.machine(), isa=isa, vnni=vnni, native=native,
                  cap=cap if cap and (isa != native or amx != ("amx_int8" in flags)) else None, amx=amx)


def cpu_isa() -> CpuIsa:
    """This CPU as the int8 kernels of OpenVINO (oneDNN) will use it (``ONEDNN_MAX_CPU_ISA`` read now)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() or None
    return _isa(cap)


def native_isa() -> CpuIsa:
    """This CPU without the cap: what runtimes that ignore ``ONEDNN_MAX_CPU_ISA`` (ONNX Runtime's MLAS) use."""
    return _isa(None)


def isa_for(backend: str) -> CpuIsa:
    """The instruction set ``backend``'s int8 kernels use here: OpenVINO (oneDNN) obeys the cap, others do not."""
    return cpu_isa() if backend == "openvino" else native_isa()


__all__ = ["CpuIsa", "ONEDNN_ISAS", "VNNI_FLAGS", "cpu_isa", "isa_for", "native_isa"]

"""OpenVINO backends opened and closed in any order and on any thread leave every thread able to take a signal.

OpenVINO's CPU plugin swaps the creating thread's signal alternate stack for one it mmaps and unmaps it when
the plugin dies (usedge/backends/openvino.py::shared_core). Before usedge kept one Core per process,
two backends closed in the order they were opened left the thread's alternate stack unmapped, and the next
handled signal (a SIGCHLD here; Ctrl-C or SIGTERM in `usedge stream`) killed the process with SIGSEGV and no
traceback: the suite's intermittent crash of issue 25. The script runs in a child process so that a crash is
an exit code, not the end of the test run.
"""
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("openvino", reason="needs OpenVINO (usedge[cpu])")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the alternate-stack swap is Linux-only (sigaltstack, /proc/self/maps)")

SCRIPT = textwrap.dedent("""
    import ctypes, faulthandler, gc, signal, subprocess, sys, threading
    import numpy as np
    from usedge.backends import open_backend

    class Stack(ctypes.Structure):
        _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]

    def altstack_mapped():
        s = Stack()
        ctypes.CDLL(None).sigaltstack(None, ctypes.byref(s))
        if not s.sp:
            return True
        spans = (line.split()[0].split("-") for line in open("/proc/self/maps"))
        return any(int(a, 16) <= s.sp < int(b, 16) for a, b in spans)

    faulthandler.enable()                      # pytest does the same: the stack the plugin swaps out
    path, x = sys.argv[1], np.zeros((1, 3, 64, 64), np.float32)

    def opened():
        b = open_backend("openvino", path, threads=1)
        b.infer(x)
        return b

    first, second = opened(), opened()         # closed in the order they were opened
    first.close(); second.close(); del first, second; gc.collect()
    print("fifo", altstack_mapped())

    held = opened()                            # opened here, closed on another thread
    t = threading.Thread(target=held.close); t.start(); t.join(); del held; gc.collect()
    print("thread", altstack_mapped())

    signal.signal(signal.SIGCHLD, lambda *a: None)   # as torch's DataLoader does
    for _ in range(5):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    print("signals ok")
""")


def test_backends_closed_in_open_order_or_on_another_thread_keep_signal_delivery(bundle_dir):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(bundle_dir / "model.fp32.onnx")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode} (-11 is the SIGSEGV):\n{proc.stdout}\n{proc.stderr[-2000:]}"
    assert proc.stdout.split() == ["fifo", "True", "thread", "True", "signals", "ok"], proc.stdout

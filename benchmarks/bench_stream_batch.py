"""Lossless Stream throughput on the 120-frame SonoSite echo cine (pydicom-data), frame by frame vs batched
(``Stream(..., batch=N)`` / ``usedge stream --lossless --batch N``), without sinks and with an overlay video sink
(every mask decoded and drawn); the packaged default bundle; one process per row, rows interleaved over 2 rounds.

    python benchmarks/bench_stream_batch.py
"""
import json, subprocess, sys, time
ROW = r'''
import sys, time, json, tempfile
from usedge.stream import Stream, DicomSource, echo_cine_path, VideoSink
batch, sink = int(sys.argv[1]), sys.argv[2] == "overlay"
with tempfile.TemporaryDirectory() as tmp:
    sinks = [VideoSink(tmp + "/o.avi", fps=30)] if sink else []
    from usedge.export.defaults import shipped_bundle
    s = Stream(DicomSource(echo_cine_path()), shipped_bundle(), mode="lossless", batch=batch, sinks=sinks, warmup=0)
    t = time.perf_counter(); n = sum(1 for _ in s); dt = time.perf_counter() - t
print(json.dumps({"frames": n, "fps": n / dt}))
'''
res = {}
for rnd in range(2):
    for sink in ("none", "overlay"):
        for b in (1, 4, 8):
            out = subprocess.run([sys.executable, "-c", ROW, str(b), sink], capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"err": out.stderr[-300:]}
            res.setdefault((sink, b), []).append(r)
for k, v in res.items():
    print(k, v)

"""What one hostile frame costs the server: peak memory and time under the inference lock, with and without
the ingest bound (``usedge serve --max-side``, default 2048). Linux (reads /proc/self/status).

Each row runs in a process of its own (peak RSS is per process): it opens the packaged default bundle, takes
its resident size, then does what the server does with one client message: ``protocol.ingest`` (decode and,
when bounded, downscale; the decode pool, outside the lock), the Predictor call on all tasks (what the lock
holds), and the JSON result with contours mapped back to the sent frame's pixels (the decode pool).

    python benchmarks/bench_serve_bounds.py [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = {"8192² 16-bit PNG": "png16", "8000² JPEG": "jpeg", "1920×1080 JPEG (a normal frame)": "hd"}
BOUNDS = {"none (--max-side 0: as sent)": 0, "default (--max-side 2048)": 2048}


def make_frames(folder: Path) -> dict[str, Path]:
    """Smooth frames with a bright disc: they compress small (the 8192² PNG is ~0.5 MB) but decode huge."""
    import cv2
    import numpy as np

    def scene(h: int, w: int) -> np.ndarray:
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        img = 60 + 40 * np.sin(x / w * 6) * np.cos(y / h * 4)
        cv2.circle(img, (w // 2, h // 2), min(h, w) // 5, 200.0, -1)
        return img

    out = {"png16": folder / "big16.png", "jpeg": folder / "big.jpg", "hd": folder / "hd.jpg"}
    cv2.imwrite(str(out["png16"]), (scene(8192, 8192) * 257).astype(np.uint16), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    cv2.imwrite(str(out["jpeg"]), scene(8000, 8000).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(out["hd"]), scene(1080, 1920).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return out


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status in MB (per address space: ru_maxrss would carry the parent's peak
    across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def row(path: str, max_side: int) -> dict:
    """One message through the server's steps, in this fresh process."""
    import time

    import usedge
    from usedge.serve import protocol as p

    predictor = usedge.load()
    predictor(__import__("numpy").zeros((64, 64), "uint8"))          # warm: first-call costs are not the frame's
    base = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")                     # reset the peak (VmHWM) to the current RSS
    data = Path(path).read_bytes()
    t0 = time.perf_counter()
    frame = p.ingest(data, max_side=max_side or None)
    t1 = time.perf_counter()
    result = predictor(frame.image)
    t2 = time.perf_counter()
    payload = p.rescale_result(result.to_json(contours=True), frame.width, frame.height)
    t3 = time.perf_counter()
    peak = _status_mb("VmHWM")
    return {"bytes": len(data), "analysed": list(frame.image.shape[:2]), "decode_ms": (t1 - t0) * 1e3,
            "lock_ms": (t2 - t1) * 1e3, "json_ms": (t3 - t2) * 1e3, "rss_before_mb": base, "peak_rss_mb": peak,
            "width": payload["width"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="repeat each row in a new process; medians reported")
    ap.add_argument("--row", nargs=2, metavar=("PATH", "MAX_SIDE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.row:
        print(json.dumps(row(a.row[0], int(a.row[1]))))
        return
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        frames = make_frames(Path(tmp))
        print("| frame | bytes | ingest bound | analysed | decode ms | under the lock ms | JSON ms | RSS before MB | "
              "peak RSS MB |\n|---|---|---|---|---|---|---|---|---|")
        for case, key in CASES.items():
            for bound, side in BOUNDS.items():
                runs = []
                for _ in range(a.rounds):
                    out = subprocess.run([sys.executable, __file__, "--row", str(frames[key]), str(side)],
                                         capture_output=True, text=True, check=True)
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                med = {k: float(np.median([r[k] for r in runs])) for k in
                       ("decode_ms", "lock_ms", "json_ms", "rss_before_mb", "peak_rss_mb")}
                h, w = runs[0]["analysed"]
                print(f"| {case} | {runs[0]['bytes']:,} | {bound} | {w}×{h} | {med['decode_ms']:.0f} | "
                      f"{med['lock_ms']:.0f} | {med['json_ms']:.0f} | {med['rss_before_mb']:.0f} | "
                      f"{med['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

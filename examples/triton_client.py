"""A Triton client for usedge: read a DICOM cine (or a video, a folder, the phantom), send each frame to the
Triton model ``usedge`` over HTTP or gRPC with ``tritonclient``, print each frame's per-task results.

    usedge serve --triton &                     # from the Triton venv (make triton); or a Triton running the
                                                # repository of `usedge triton-repo`
    python examples/triton_client.py echo --frames 10                       # the SonoSite echo cine, gRPC
    python examples/triton_client.py scan.dcm --protocol http --url 127.0.0.1:8000 --tasks cardiac_multi,organ_cls

Any KServe v2 client does the same (C++, Java, Go, curl): input ``frame`` UINT8 [1, H, W, C] (C = 1 grey, 3 BGR,
4 BGRA), optional ``tasks`` BYTES [1, 1] ("a,b"), optional ``region`` INT32 [1, 4] (the scan region x0, y0, x1, y1;
sent here from the DICOM's ultrasound regions, as `usedge stream` uses them), output ``result`` BYTES [1, 1]
holding the JSON of ``FrameResult.to_json()`` in the frame's own pixels (docs/triton.md).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from usedge.stream import open_source


def summary(result: dict) -> str:
    """One line per frame: labels, boxes, points and mask areas of every task."""
    parts = []
    for name, t in result["tasks"].items():
        kind = t["kind"]
        if kind == "classification":
            parts.append(f"{name}={t['label']} ({max(t['predicted_probs']):.2f})")
        elif kind == "detection":
            parts.append(f"{name}=box {[round(v) for v in t['bbox_pixels']]} ({t['score']:.2f})")
        elif kind == "regression":
            parts.append(f"{name}=points {[round(v) for v in t['predicted_points_pixels']]}")
        else:
            parts.append(f"{name}=" + ",".join(f"{k}:{v}px" for k, v in t["area_pixels"].items()))
    return "; ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="DICOM / video / image folder / 'echo' (the SonoSite cine) / 'phantom'")
    ap.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    ap.add_argument("--url", default=None, help="host:port (default 127.0.0.1:8001 for gRPC, :8000 for HTTP)")
    ap.add_argument("--tasks", default=None, help="comma list (default: every task of the model)")
    ap.add_argument("--frames", type=int, default=None, help="stop after N frames")
    ap.add_argument("--whole-frame", action="store_true", help="do not send the DICOM scan region")
    args = ap.parse_args()
    if args.protocol == "grpc":
        import tritonclient.grpc as tc
    else:
        import tritonclient.http as tc
    url = args.url or ("127.0.0.1:8001" if args.protocol == "grpc" else "127.0.0.1:8000")
    client = tc.InferenceServerClient(url)
    if not client.is_model_ready("usedge"):
        print(f"the model 'usedge' is not ready at {url}", file=sys.stderr)
        return 1
    source = open_source(args.source)
    source.open()
    try:
        n = 0
        while (args.frames is None or n < args.frames) and (frame := source.read()) is not None:
            n += 1
            image = frame.image if frame.image.ndim == 3 else frame.image[..., None]
            if image.dtype != np.uint8:                       # 16-bit grey: the model takes 8-bit pixels
                image = (image // 257).astype(np.uint8)
            inputs = [tc.InferInput("frame", [1, *image.shape], "UINT8")]
            inputs[0].set_data_from_numpy(image[None])
            if args.tasks:
                inputs.append(tc.InferInput("tasks", [1, 1], "BYTES"))
                inputs[-1].set_data_from_numpy(np.array([[args.tasks.encode()]], dtype=object))
            if frame.region is not None and not args.whole_frame:   # a DICOM's scan region: analysed cropped
                r = frame.region
                inputs.append(tc.InferInput("region", [1, 4], "INT32"))
                inputs[-1].set_data_from_numpy(np.array([[r.x0, r.y0, r.x1, r.y1]], dtype=np.int32))
            t0 = time.perf_counter()
            out = client.infer("usedge", inputs, outputs=[tc.InferRequestedOutput("result")])
            ms = (time.perf_counter() - t0) * 1e3
            result = json.loads(out.as_numpy("result")[0, 0])
            print(f"frame {frame.index} ({result['width']}×{result['height']}, {ms:.1f} ms): {summary(result)}")
    finally:
        source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

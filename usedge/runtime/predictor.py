"""The Predictor: raw frames in, typed results in original pixels out, on any backend. No torch.

    import usedge
    predictor = usedge.load("out/bundle")              # picks the backend and precision; says which
    result = predictor(frame)                           # H×W grey or H×W×3 BGR, uint8 or uint16
    result["fetal_head"].mask, result["organ_cls"].label, result.to_json()

Per frame: validate -> crop to the scan region (the frame's DICOM region, one given, or with ``region="auto"``
one found in the frame: usedge.data.region_finder) -> resize -> normalise (the bundle's recorded preprocessing)
-> backend -> decode to crop pixels -> shift back to frame pixels; the frame gate (usedge.runtime.gate) judges
the model's input and its embedding: ``result.gate``. Batches of frames run as one backend call (split to the
model's batch range).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usedge.backends import Backend, backend_class
from usedge.data.decode import decode, segmentation_confidence
from usedge.data.preprocess import Framing, PreprocessSpec, model_input, normalize_input
from usedge.data.region_finder import RegionCache
from usedge.errors import ConfigError, DataError
from usedge.runtime.gate import FrameGate
from usedge.runtime.results import FrameResult, make_result
from usedge.tasks import EMBEDDING_OUTPUT, TaskKind, get_task

log = logging.getLogger("usedge")

#: Largest frame accepted (pixels): 8192 × 8192. Bigger frames are refused rather than risking memory.
MAX_FRAME_PIXELS = 8192 * 8192
FRAME_DTYPES = (np.uint8, np.uint16)

Region = tuple[int, int, int, int]
#: what ``region=`` may say besides a box: use the frame's own (DICOM) region or none ("dicom"), find one in frames
#: that have none ("auto"), or ignore every region ("none")
REGION_MODES = ("dicom", "auto", "none")


@dataclass(frozen=True)
class Choice:
    """What ``usedge.load`` picked and why."""

    backend: str
    precision: str
    reason: str


def check_frame(image: object) -> np.ndarray:
    """Refuse frames the Predictor cannot read, saying what was wrong and how to fix it."""
    if not isinstance(image, np.ndarray):
        raise DataError(f"frame must be a numpy array, got {type(image).__name__}.",
                        fix="decode the image first (cv2.imread, usedge.data.open_frames).")
    if image.ndim < 2:
        raise DataError(f"frame shape {image.shape} is {image.ndim}-D: expected H×W grey or H×W×3 BGR.",
                        fix="reshape flat pixel buffers to (height, width[, channels]) first.")
    if image.size == 0 or min(image.shape[:2]) == 0:
        raise DataError(f"frame is empty (shape {image.shape}).", fix="check the frame source.")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise DataError(f"frame shape {image.shape}: expected H×W grey or H×W×3 BGR (or H×W×4 BGRA).",
                        fix="pass one frame at a time (a batch: predictor.predict_batch([...])); "
                            "channel-first arrays need image.transpose(1, 2, 0).")
    if image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise DataError("frame holds NaN or infinity.", fix="check the frame source.")
        raise DataError(f"frame dtype {image.dtype}: the Predictor takes stored pixels (uint8 or uint16).",
                        fix="convert, e.g. np.clip(image * 255, 0, 255).astype(np.uint8) for [0, 1] floats.")
    if image.dtype.byteorder == (">" if np.little_endian else "<"):  # e.g. big-endian uint16 from a raw dump
        native = image.dtype.newbyteorder("=")
        if native in FRAME_DTYPES:
            image = image.astype(native)   # same values, native byte order
    if image.dtype not in FRAME_DTYPES:
        raise DataError(f"frame dtype {image.dtype} is not supported.", fix="use uint8 or uint16 pixels.")
    h, w = image.shape[:2]
    if h * w > MAX_FRAME_PIXELS:
        raise DataError(f"frame is {w}×{h} = {h * w / 1e6:.0f} MP, above the {MAX_FRAME_PIXELS / 1e6:.0f} MP limit.",
                        fix="downscale the frame or crop it to the scan region first.")
    return image


def check_region_mode(region) -> str | Region:
    """``region=`` as the Predictor keeps it: one of :data:`REGION_MODES`, or a box (x0, y0, x1, y1) of ints; a
    ScanRegion as its box; "x0,y0,x1,y1" text as a box."""
    if region is None:
        return "dicom"
    if isinstance(region, str):
        text = region.strip().lower()
        if text in REGION_MODES:
            return text
        try:
            x0, y0, x1, y1 = (int(v) for v in text.split(","))
        except ValueError:
            raise ConfigError(f"region {region!r} is not one of {', '.join(REGION_MODES)} nor x0,y0,x1,y1.",
                              fix="e.g. --region auto, --region none, or --region 80,60,560,420 (pixels, x1/y1 "
                                  "exclusive)") from None
        return (x0, y0, x1, y1)
    if hasattr(region, "x0"):
        return (int(region.x0), int(region.y0), int(region.x1), int(region.y1))
    try:
        x0, y0, x1, y1 = (int(v) for v in region)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"region {region!r} is not (x0, y0, x1, y1).",
                        fix="pass a ScanRegion, a 4-tuple of pixels (x1/y1 exclusive), or one of "
                            f"{', '.join(REGION_MODES)}.") from None
    return (x0, y0, x1, y1)


def _region_of(frame_region, h: int, w: int) -> Region | None:
    if frame_region is None:
        return None
    if hasattr(frame_region, "clip"):  # ScanRegion
        r = frame_region.clip(h, w)
        box = (r.x0, r.y0, r.x1, r.y1)
    else:
        try:
            x0, y0, x1, y1 = (int(v) for v in frame_region)
        except (TypeError, ValueError, OverflowError):   # OverflowError: int(inf); ValueError: int(nan)
            raise DataError(f"region {frame_region!r} is not (x0, y0, x1, y1).",
                            fix="pass a ScanRegion or a 4-tuple of pixels, x1/y1 exclusive.") from None
        x0, x1 = sorted((min(max(x0, 0), w), min(max(x1, 0), w)))
        y0, y1 = sorted((min(max(y0, 0), h), min(max(y1, 0), h)))
        box = (x0, y0, x1, y1)
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        raise DataError(f"scan region {box} is empty inside the {w}×{h} frame.",
                        fix="check the region (DICOM SequenceOfUltrasoundRegions) or pass region=None.")
    return None if box == (0, 0, w, h) else box


class Predictor:
    """Frames -> :class:`FrameResult`. Build with :func:`usedge.load` (or from any Backend + spec)."""

    def __init__(self, backend: Backend, spec: PreprocessSpec, tasks: Sequence[str],
                 choice: Choice | None = None, metadata: dict | None = None, lazy_masks: bool = True,
                 gate: FrameGate | None = None, region: str | Sequence[int] = "dicom") -> None:
        self.backend = backend
        #: the frame gate (None: off); ``result.gate`` is its verdict on each frame
        self.gate = gate
        #: classification task -> temperature its logits are divided by (calibrated probabilities; {}: none)
        self.temperatures: dict[str, float] = {}
        self.region = check_region_mode(region)
        #: the region found in frames without one (``region="auto"``, for the Predictor or for a call)
        self.region_cache = RegionCache()
        #: segmentation masks decode on first read of ``result[task].mask`` (True), or inside ``predict`` (False)
        self.lazy_masks = lazy_masks
        self.spec = spec
        self.model_tasks = tuple(tasks)
        self.tasks = self.model_tasks
        self.choice = choice or Choice(backend.name, "unknown", "given")
        self.metadata = metadata or {}
        #: how a crop to a scan region is padded to the training images' shape before the resize
        self.framing = Framing.from_dict(self.metadata.get("framing"))

    @property
    def precision(self) -> str:
        return self.choice.precision

    def select(self, tasks: str | Sequence[str] | None) -> tuple[str, ...]:
        """Validate a task selection against the model's tasks. None: this Predictor's own selection
        (``usedge.load(tasks=...)``; all of the model's by default); "all": every task of the model."""
        if tasks is None:
            return self.tasks
        if tasks == "all":
            return self.model_tasks
        if not isinstance(tasks, str) and not (isinstance(tasks, Sequence) and all(isinstance(t, str) for t in tasks)):
            raise ConfigError(f"tasks must be task names (a comma-separated string or a list of strings), got "
                              f"{type(tasks).__name__} {tasks!r}.", fix=f"use some of: {', '.join(self.model_tasks)}")
        chosen = tuple(t.strip() for t in tasks.split(",")) if isinstance(tasks, str) else tuple(tasks)
        if not chosen or "" in chosen:
            raise ConfigError(f"empty task name in {tasks!r}.", fix=f"use some of: {', '.join(self.model_tasks)}")
        unknown = [t for t in chosen if t not in self.model_tasks]
        if unknown:
            raise ConfigError(f"tasks {unknown} are not in this model.", fix=f"use some of: {', '.join(self.model_tasks)}")
        return chosen

    def __call__(self, frame, region=None, tasks=None) -> FrameResult:
        return self.predict(frame, region=region, tasks=tasks)

    def predict(self, frame, region=None, tasks=None) -> FrameResult:
        """One frame (ndarray or usedge Frame; a Frame's scan region is used unless ``region`` is given)."""
        return self.predict_batch([frame], regions=[region], tasks=tasks)[0]

    def predict_batch(self, frames: Sequence, regions: Sequence | None = None, tasks=None) -> list[FrameResult]:
        chosen = self.select(tasks)
        regions = list(regions) if regions is not None else [None] * len(frames)
        if len(regions) != len(frames):
            raise DataError(f"{len(frames)} frames but {len(regions)} regions.", fix="pass one region per frame.")
        limit = self.backend.input.batch_max or len(frames) or 1
        out: list[FrameResult] = []
        for start in range(0, len(frames), limit):
            out += self._run(frames[start:start + limit], regions[start:start + limit], chosen)
        return out

    def _run(self, frames: Sequence, regions: Sequence, tasks: tuple[str, ...]) -> list[FrameResult]:
        t0 = time.perf_counter()
        items = [self._prepare(f, r) for f, r in zip(frames, regions)]
        smalls = [model_input(seen, self.spec) for _, seen, _, _, _, _ in items]
        x = np.stack([normalize_input(s, self.spec) for s in smalls])
        t1 = time.perf_counter()
        outputs = self._calibrated(self.backend.infer(x), tasks)
        t2 = time.perf_counter()
        verdicts = self._judge(smalls, outputs)
        tg = time.perf_counter()
        results = []
        for n, (image, seen, box, source, frame, inner) in enumerate(items):
            h, w = image.shape[:2]
            decoded = {t: self._result(t, outputs, n, seen.shape[1], seen.shape[0], box, inner, (w, h)) for t in tasks}
            for t in self.temperatures.keys() & decoded.keys():
                decoded[t] = dataclasses.replace(decoded[t], temperature=self.temperatures[t])
            results.append(FrameResult(w, h, decoded, region=box, index=getattr(frame, "index", None),
                                       timestamp_s=getattr(frame, "timestamp_s", None), gate=verdicts[n],
                                       region_source=source if box else None))
        t3 = time.perf_counter()
        timings = {"preprocess": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3, "gate": (tg - t2) * 1e3,
                   "postprocess": (t3 - tg) * 1e3, "total": (t3 - t0) * 1e3, "batch": float(len(items))}
        for r in results:
            r.timings_ms = dict(timings)
        return results

    def _result(self, task: str, outputs: dict, n: int, width: int, height: int, box, inner, full):
        """Item ``n``'s typed result. The model saw a ``width``×``height`` image: the crop to ``box`` (None: the
        frame) at ``inner`` = (x, y, w, h) inside the framing's padding. Segmentation keeps a private copy of its
        logits (a backend may reuse its output buffers on the next call), from which the mask (with
        ``lazy_masks``, on first read; the crop's part of it) and its confidence are computed."""
        spec = get_task(task)
        mode = self.spec.seg_decode
        px, py, cw, ch = inner
        x0, y0 = (box[0], box[1]) if box else (0, 0)
        if spec.kind is not TaskKind.SEGMENTATION:
            return make_result(task, decode(spec, outputs, n, width, height, mode), width, height,
                               (x0 - px, y0 - py), full)
        name = spec.output_names[0]
        logits = {name: np.array(outputs[name][n:n + 1])}
        padded = (width, height) != (cw, ch)

        def crop_mask() -> np.ndarray:
            m = decode(spec, logits, 0, width, height, mode)
            return np.ascontiguousarray(m[py:py + ch, px:px + cw]) if padded else m

        result = make_result(task, crop_mask if self.lazy_masks else crop_mask(), cw, ch, (x0, y0), full)
        result.set_confidence(lambda: segmentation_confidence(logits[name][0]))
        return result

    def _calibrated(self, outputs: dict, tasks: tuple[str, ...]) -> dict:
        """The classification logits divided by their fitted temperatures (the others as they are)."""
        if not self.temperatures:
            return outputs
        out = dict(outputs)
        for t in tasks:
            if t in self.temperatures:
                name = get_task(t).output_names[0]
                out[name] = np.asarray(outputs[name], np.float32) / np.float32(self.temperatures[t])
        return out

    def _judge(self, smalls: list[np.ndarray], outputs: dict) -> list:
        """The gate's verdict on each item (None each when the gate is off)."""
        if self.gate is None:
            return [None] * len(smalls)
        emb = outputs.get(EMBEDDING_OUTPUT)
        if emb is None or not self.gate.ood_available:
            return [self.gate.judge(s) for s in smalls]
        d = self.gate.distance(np.asarray(emb))
        return [self.gate.judge(s, distance=float(d[n])) for n, s in enumerate(smalls)]

    def _prepare(self, frame, region):
        """(image, what the model sees, box, where the box came from, frame, the crop's (x, y, w, h) in what the
        model sees): the box is ``region`` given for this call, else the Predictor's mode: a box, the frame's
        own region ("dicom"), one found when the frame has none ("auto"); a crop is padded to the framing."""
        image = check_frame(getattr(frame, "image", frame))
        h, w = image.shape[:2]
        mode = self.region if region is None else check_region_mode(region)
        if isinstance(mode, tuple):
            box, source = _region_of(mode, h, w), "given"
        elif mode == "none":
            box, source = None, None
        else:
            found = getattr(frame, "region", None)
            source = "dicom" if found is not None else None
            if found is None and mode == "auto":
                found = self.region_cache(image)
                source = "found"
            box = _region_of(found, h, w)
        crop = image[box[1]:box[3], box[0]:box[2]] if box else image
        seen, (px, py) = self.framing.pad(crop) if box else (crop, (0, 0))
        return image, seen, box, source, frame, (px, py, crop.shape[1], crop.shape[0])

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Predictor(backend={self.choice.backend}, precision={self.choice.precision}, "
                f"tasks={len(self.model_tasks)}, input={self.spec.size}²)")


# -- usedge.load ------------------------------------------------------------------------------------------


def load(bundle: str | Path | None = None, backend: str = "auto", precision: str = "auto", tasks=None,
         verify: bool = True, gate: bool | dict = True, region: str | Sequence[int] = "dicom",
         calibrate: bool = True, **options) -> Predictor:
    """Open a bundle as a :class:`Predictor`.

    Args:
        bundle: bundle folder or .zip written by ``usedge export``; None: the packaged INT8 default bundle.
        backend: "auto", "openvino", "onnxruntime", "tensorrt" or "torch".
        precision: "auto", "int8", "fp32" (or "fp16" for tensorrt / torch on CUDA). With "auto", int8 is picked
            only where it passed the export's gate, pays on this CPU (VNNI) and passes the int8 check on this
            machine (usedge.backends.int8_check, cached); otherwise the next choice, and the reason is logged.
            An explicit "int8" that fails the gate or the check here runs, with a warning.
        tasks: restrict the default task selection (all outputs are still computed in one pass).
        verify: check the bundle's checksums on load.
        gate: the frame gate (usedge.runtime.gate) with the thresholds the export fitted (True), off (False), or
            with some thresholds replaced (a dict, e.g. ``{"ood": 0.3}``); each result's ``gate`` is its verdict.
        calibrate: classification probabilities through the temperatures the export fitted on held-out images
            (temperature scaling; the predicted class is unchanged; ``result[task].temperature``).
        region: which part of each frame the model sees: "dicom" (the frame's own scan region, else all of it),
            "auto" (that, else the ultrasound image found inside the frame, once per layout), "none" (the whole
            frame), or a box (x0, y0, x1, y1).
        options: passed to the backend (threads, device, hint, providers, ...; docs/runtime.md).
    """
    from usedge.bundle import Bundle, load_bundle

    if bundle is None:
        from usedge.assets import shipped_bundle

        bundle = shipped_bundle()
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, verify=verify)
    refused: dict[str, str] = {}
    while True:
        choice = choose(b, backend, precision, refused)
        be = _open(b, choice, options)
        why_not = _int8_wrong_here(b, choice, be) if choice.precision == "int8" else None
        if why_not is None:
            break
        if precision != "auto":   # asked for explicitly (e.g. to measure it): run it, but loudly
            log.warning("usedge.load: int8 on %s requested although %s; precision='auto' would not use it",
                        choice.backend, why_not)
            break
        be.close()
        log.warning("usedge.load: not using int8 on %s: %s", choice.backend, why_not)
        refused[choice.backend] = why_not
    log.info("usedge.load: %s %s (%s)", choice.backend, choice.precision, choice.reason)
    try:
        predictor = Predictor(be, b.preprocess, b.tasks, choice, b.metadata, gate=_gate(b, choice, gate),
                              region=region)
        predictor.tasks = predictor.select(tasks)
        if calibrate:
            predictor.temperatures = temperatures(b, choice.precision)
    except Exception:
        be.close()      # a bad selection, gate or region leaves no open session behind
        raise
    return predictor


def temperatures(bundle, precision: str) -> dict[str, float]:
    """The export's fitted temperature per classification task for ``precision`` (fp32's serve fp16); {}: none."""
    rec = (bundle.metadata.get("frame_gate") or {}).get("temperature") or {}
    rows = rec.get(precision) or rec.get("fp32") or {}
    return {t: float(r["temperature"]) for t, r in rows.items() if float(r.get("temperature", 0)) > 0}


def _gate(bundle, choice: Choice, gate: bool | dict) -> FrameGate | None:
    if gate is False or gate is None:
        return None
    fitted = FrameGate.from_bundle(bundle, choice.precision)
    if fitted.note:
        log.info("usedge.load: frame gate: %s", fitted.note)
    if isinstance(gate, dict):
        return fitted.with_thresholds(**gate)
    if gate is not True:
        raise ConfigError(f"gate must be True, False or a dict of thresholds, got {type(gate).__name__}.",
                          fix='e.g. gate={"ood": 0.3} (the k-NN distance above which a frame is rejected)')
    return fitted


def _int8_wrong_here(bundle, choice: Choice, backend) -> str | None:
    """Why the int8 graph must not be used through ``backend`` on this machine (its check fails), or None.
    Bundles without a check file, and engines (TensorRT), are not checked here."""
    if choice.backend not in ("openvino", "onnxruntime"):
        return None
    from usedge.backends.int8_check import check_backend

    verdict = check_backend(bundle, choice.backend, opened=backend)
    if verdict["passed"] is not False:
        return None
    rows = verdict["tasks"]
    return (f"its int8 check fails on this CPU ({verdict['machine']['label']}): "
            + ", ".join(f"{t} {rows[t]['metric']} {rows[t]['value']}" for t in verdict["failing"][:4])
            + " vs the exact Q/DQ result")


def choose(bundle, backend: str = "auto", precision: str = "auto", refused: dict[str, str] | None = None) -> Choice:
    """Pick backend and precision for this machine (a function of what is installed, this CPU and the bundle).
    ``refused``: backends whose int8 failed the check here (backend -> why), excluded from int8."""
    from usedge.backends import auto_order, available_backends, backend_class, backend_names

    refused = refused or {}
    if backend != "auto" and backend not in backend_names():
        raise ConfigError(f"Unknown backend '{backend}'.", fix=f"use auto or one of: {', '.join(backend_names())}")
    installed = available_backends(onnx_only=False)
    if backend == "auto":
        order = auto_order()      # the backends' declared ranks: TensorRT with an engine, then the CPU runtimes
        usable = [b for b in order if backend_class(b).usable(bundle)]
        if not usable:
            raise ConfigError("no inference backend is installed.", fix="pip install 'usedge[cpu]' (OpenVINO + ONNX Runtime).")
        if refused and "fp32" not in bundle.precisions:
            usable = [b for b in usable if b not in refused] or usable
        backend, why = usable[0], f"first available of {', '.join(order)}"
        if backend != "tensorrt" and precision == "auto":
            fastest = _fastest_measured(bundle, usable, refused)
            if fastest:
                return fastest
    else:
        if backend not in installed:
            raise ConfigError(f"backend '{backend}' is not installed here.",
                              fix=f"install its extra, or use one of: {', '.join(installed) or 'none'}")
        why = "requested"
    if precision == "auto":
        precision, note = _auto_precision(bundle, backend, refused)
        why += f"; {note}"
    elif precision == "int8" and not bundle.meta.int8_gate_passed:
        log.warning("usedge.load: int8 requested although it did not pass the accuracy gate (report.md)")
    if precision not in ("int8", "fp32", "fp16"):
        raise ConfigError(f"Unknown precision '{precision}'.", fix="use auto, int8, fp16 or fp32.")
    return Choice(backend, precision, why)


def _auto_precision(bundle, backend: str, refused: dict[str, str]) -> tuple[str, str]:
    """(precision, why) for ``backend`` under precision="auto"."""
    if backend in refused:
        if "fp32" not in bundle.precisions:
            raise ConfigError(f"this bundle has only int8 and {refused[backend]}.",
                              fix="re-export with --target cpu (7-bit weights, exact on every x86 CPU), or ship fp32")
        return "fp32", f"int8 not used: {refused[backend]}"
    cls = backend_class(backend)
    if (own := cls.auto_precision(bundle)) is not None:
        return own
    if "int8" in bundle.precisions and bundle.meta.int8_gate_passed:
        slow = _int8_slow_here(bundle, backend)
        if slow and "fp32" in bundle.precisions:
            return "fp32", slow
        return _faster(bundle.meta.latency, backend)
    return cls.fallback_precision, "int8 absent or failed the accuracy gate"


def _int8_slow_here(bundle, backend: str) -> str | None:
    """Why int8 does not pay through a CPU ``backend`` on this CPU, or None. With VNNI it does (exact int8 dot
    products). Without VNNI (``vpmaddubsw`` pairs and int16 adds) it depends on the CPU: OpenVINO int8 measured
    0.98x fp32 on an AVX2 EPYC (issue 25) and 1.21x on a Xeon limited to AVX2 (benchmarks/RESULTS.md), so it is
    measured here, once (cached), when the bundle ships both precisions."""
    if backend not in ("openvino", "onnxruntime"):
        return None
    from usedge._cpu import isa_for

    isa = isa_for(backend)
    if isa.vnni:
        return None
    if "fp32" not in bundle.precisions:
        return f"this CPU has no VNNI ({isa.label}) and the bundle has no fp32 to compare with"
    from usedge.backends.int8_check import MIN_SPEEDUP, int8_speedup_here

    speed = int8_speedup_here(bundle, backend)
    if speed["speedup"] >= MIN_SPEEDUP:
        return None
    return (f"this CPU has no VNNI ({isa.label}): int8 measured {speed['speedup']:.2f}x fp32 here "
            f"({speed['int8_ms']:.2f} vs {speed['fp32_ms']:.2f} ms), below {MIN_SPEEDUP}x")


def _fastest_measured(bundle, usable: list[str], refused: dict[str, str] | None = None) -> Choice | None:
    """The (backend, precision) with the lowest p50 in the bundle's export-time latency table, int8 only if it
    passed the gate, was not refused here and can pay on this CPU; None when the bundle has no figures for the
    installed backends, or when the export ran on a CPU of another kind (VNNI or not) than this one."""
    from usedge._cpu import cpu_isa

    refused = refused or {}
    latency, gate_ok = bundle.meta.latency, bundle.meta.int8_gate_passed
    measured_vnni = (latency.get("conditions") or {}).get("vnni")
    if measured_vnni is not None and measured_vnni != cpu_isa().vnni:
        return None   # another kind of CPU: its int8-vs-fp32 ratio does not hold here
    skipped = []

    def int8_ok(b: str) -> bool:
        why = refused.get(b) or _int8_slow_here(bundle, b)
        if why:
            skipped.append(why)
        return why is None

    precisions = [p for p in ("fp32", "int8") if p in bundle.precisions and (p == "fp32" or gate_ok)]
    timed = sorted((latency[p][b]["p50_ms"], b, p) for p in precisions for b in usable
                   if isinstance(latency.get(p, {}).get(b), dict) and "p50_ms" in latency[p][b]
                   and (p == "fp32" or int8_ok(b)))
    if not timed:
        return None
    ms, backend, precision = timed[0]
    others = ", ".join(f"{b} {p} {t:.2f}" for t, b, p in timed[1:])
    note = "" if gate_ok or "int8" not in bundle.precisions else "; int8 failed the accuracy gate"
    note += f"; int8 not used: {skipped[0]}" if skipped else ""
    return Choice(backend, precision, f"fastest at export on the export machine: {backend} {precision} {ms:.2f} ms"
                  + (f" (vs {others})" if others else "") + note)


def _faster(latency: dict, backend: str) -> tuple[str, str]:
    """int8 (it passed the gate) unless the export's side-by-side latency on this backend says fp32 is faster."""
    try:
        f, q = latency["fp32"][backend]["p50_ms"], latency["int8"][backend]["p50_ms"]
    except (KeyError, TypeError):
        return "int8", "int8 passed the accuracy gate"
    if q <= f:
        return "int8", f"int8 passed the accuracy gate and measured faster at export ({q:.2f} vs {f:.2f} ms)"
    return "fp32", f"int8 passed the gate but measured slower at export on {backend} ({q:.2f} vs {f:.2f} ms)"


def _open(bundle, choice: Choice, options: dict) -> Backend:
    from usedge.backends import backend_class

    backend = backend_class(choice.backend).open_for(bundle, choice.precision, **options)
    try:
        _check_model_matches(bundle, choice, backend)
    except Exception:
        backend.close()
        raise
    return backend


def _check_model_matches(bundle, choice: Choice, backend: Backend) -> None:
    """The opened model has every output the metadata lists and takes the input size it records: a mismatch
    (an edited or mixed bundle) is one error at load, not a KeyError or a resize error on every frame."""
    missing = [o.name for o in bundle.meta.outputs if o.name not in backend.output_names]
    what = f"bundle {bundle.path}: its {choice.precision} model on {choice.backend}"
    if missing:
        raise DataError(f"{what} lacks {len(missing)} output(s) its metadata lists: {', '.join(missing[:5])}"
                        + (" ..." if len(missing) > 5 else "") + ".",
                        fix="re-export the bundle (usedge export); its model and metadata.json come from different exports.")
    size = bundle.preprocess.size
    if (backend.input.height, backend.input.width) not in ((size, size), (None, None)):
        raise DataError(f"{what} takes {backend.input.height}×{backend.input.width} images, but the metadata's "
                        f"preprocess size is {size}.",
                        fix="re-export the bundle (usedge export); its model and metadata.json come from different exports.")


__all__ = ["Choice", "MAX_FRAME_PIXELS", "REGION_MODES", "Predictor", "check_frame", "check_region_mode", "choose",
           "load"]

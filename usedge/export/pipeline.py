"""``usedge export``: checkpoint -> fp32 ONNX -> (calibration -> NNCF INT8 -> per-task gate) -> verified bundle.

Steps, each reported on the console:
1. load the checkpoint (default: the student that ships with usedge);
2. export fp32 ONNX (checked, simplified, metadata) and check torch-vs-ONNX parity on OpenVINO and ORT; for a
   target that runs TensorRT also the FP16 ONNX (head arithmetic fp32) and its parity;
3. build or load the task-balanced calibration set (cache key: model hash + manifest hash);
4. quantize with NNCF (symmetric, signed int8 Q/DQ), assert every zero point is 0;
5. gate: score fp32 and int8 per task on the held-out split; on failure rank the failing tasks' activation
   quantizers by sensitivity (usedge.quantize.sensitivity) and keep the top 1, 2, 4, ... in float; still
   failing -> the bundle is written with the report, and the call raises GateFailed (non-zero exit);
6. file sizes, CPU latency (OpenVINO and ORT, fp32 and int8), report PNG/markdown, atomic bundle.
"""
from __future__ import annotations

import io
import json
import platform
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from usedge._timing import timed
from usedge.bundle import FP16_FILE, MODEL_FILES, sha256_file, write_bundle
from usedge.data.preprocess import PreprocessSpec
from usedge.errors import ConfigError, UsedgeError, storage_error
from usedge.export.report import model_card, report_markdown, report_png
from usedge.quantize.gate import GateConfig, GateRow, apply_gate, failing


class GateFailed(UsedgeError):
    """The INT8 model lost too much accuracy on some task even with float fallbacks."""


@dataclass(frozen=True)
class ExportConfig:
    model: str | None = None             # checkpoint folder / baseline .pth; None = the built-in default student
    data: str | None = None              # labelled set (train: calibration, val: gate); None = phantom default
    out: str = "out/bundle"
    int8: bool = True
    calib: str | None = None             # existing calibration folder / manifest
    per_task: int = 16
    allow_small_calibration: bool = False
    target: str = "cpu"
    gate: GateConfig = field(default_factory=GateConfig)
    make_zip: bool = False
    latency_runs: int = 50
    seed: int = 0
    max_float: int = 64                  # sensitivity search: most activation quantizers kept in float
    sensitivity_images: int = 64         # calibration images of the failing tasks used to rank quantizers
    max_gate_attempts: int = 14          # bound on gate evaluations (doubling + bisection)
    qat: str = "auto"                    # quantization-aware fine-tuning: auto (when PTQ fails), always, never
    qat_steps: int = 600
    range_estimator: str = "default"     # PTQ activation ranges (usedge.quantize.int8.RANGE_ESTIMATORS)
    gate_frr: float | None = 0.01        # the frame gate's in-distribution false-rejection rate; None: no gate


def _log(msg: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold cyan]export[/] {msg}")


def model_hash(path: Path) -> str:
    return sha256_file(path)[:16]


def run_export(cfg: ExportConfig) -> dict:
    """Run the whole export; returns the bundle metadata (raises GateFailed after writing a failing bundle;
    StorageError when the disk fills: the work folder is removed and the bundle folder left as it was)."""
    try:
        with tempfile.TemporaryDirectory(prefix="usedge-export-") as tmp:
            run = ExportRun(cfg, Path(tmp))
            run.resolve()
            run.export_fp32()
            run.export_fp16()
            if cfg.int8:
                run.quantize()
            run.frame_gate()
            bundle = run.write()
    except OSError as exc:
        if (err := storage_error(exc, "the export")) is None:
            raise
        raise err from exc
    _log(f"bundle written: {bundle}")
    if run.rows and failing(run.rows):
        raise GateFailed(f"INT8 gate failed for {', '.join(failing(run.rows))} (report in {bundle}/report.md).",
                         fix="calibrate on more / more representative images (--per-task, --calib), or ship fp32.")
    check = run.meta.get("int8", {}).get("check", {})
    if check and not check.get("passed", True):
        raise GateFailed(f"the INT8 graph is not exact on this machine's runtimes (int8 check in {bundle}/metadata.json).",
                         fix="use a target with 7-bit weights (--target cpu), or ship fp32.")
    return run.meta


@dataclass
class ExportRun:
    """One ``usedge export``: what it resolved (target, model, data, preprocessing) and what it has built so
    far (files, metadata, parity references, gate rows). Each step is a method; :func:`run_export` runs them
    in order: :meth:`resolve`, :meth:`export_fp32`, :meth:`quantize` (with ``--int8``), :meth:`frame_gate`,
    :meth:`write`."""

    cfg: ExportConfig
    tmp: Path
    target: Any = None
    model: Any = None
    config: Any = None
    source: dict = field(default_factory=dict)
    data: Path | None = None
    spec: PreprocessSpec | None = None
    files: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    ref_x: np.ndarray | None = None
    ref_out: dict = field(default_factory=dict)
    val: list = field(default_factory=list)
    fp32: Scores | None = None
    rows: list[GateRow] = field(default_factory=list)
    info: dict = field(default_factory=lambda: {"method": "ptq", "float_activations": [], "attempts": 0})

    def resolve(self) -> None:
        """The target profile, the model (checkpoint, .pth or the built-in default), the data and its spec."""
        from usedge.export.defaults import default_data, resolve_model
        from usedge.targets import load_target

        self.target = load_target(self.cfg.target)
        self.model, self.config, self.source = resolve_model(self.cfg.model)
        self.data = Path(self.cfg.data) if self.cfg.data else default_data(self.cfg.per_task, self.config.task_specs)
        self.spec = PreprocessSpec.from_config(self.config)

    def export_fp32(self) -> None:
        """The fp32 ONNX, the torch reference, its parity on every CPU runtime, and its held-out scores."""
        self.files, self.meta = _export_fp32(self.model, self.config, self.tmp, self.target)
        self.meta["source"] = self.source
        self.files.update(_torch_reference(self.model, self.config, self.tmp))
        self.ref_x, self.ref_out = _parity_inputs(self.model, self.config, self.data)
        self.meta["parity"] = {"fp32": _parity(self.files["model.fp32.onnx"], self.ref_x, self.ref_out, self.config,
                                               "fp32")}
        self.val = _val_samples(self.data, self.config)
        self.fp32 = _score(self.files["model.fp32.onnx"], self.spec, self.val, self.config)
        self.meta["accuracy"] = {"fp32": self.fp32.results}

    def export_fp16(self) -> None:
        """For targets that run TensorRT: the FP16 ONNX it builds fp16 engines from (TensorRT 11 has no other
        way), head arithmetic fp32, and its parity against the torch reference on every CPU runtime."""
        if "tensorrt" not in self.target.backends:
            return
        from usedge.quantize.int8 import head_arithmetic_scopes

        scopes = head_arithmetic_scopes(self.config.task_specs)
        path, how = _export_fp16(self.files[MODEL_FILES["fp32"]], self.tmp / FP16_FILE, scopes)
        _log(f"fp16 ONNX: {how}")
        self.files[FP16_FILE] = path
        self.meta["fp16"] = {"path": FP16_FILE, "converter": how, "fp32_scopes": scopes}
        self.meta["parity"]["fp16"] = _parity(path, self.ref_x, self.ref_out, self.config, "fp16")

    def frame_gate(self) -> None:
        """The framing (the training images' shape a scan-region crop is padded to) and the frame gate
        (usedge.export.frame_gate): each graph gains the ``frame.embedding`` output; the in-distribution embeddings
        and the thresholds fitted on the held-out images go in the bundle."""
        from usedge.bundle import FRAME_GATE_FILE
        from usedge.export.frame_gate import GateUnavailable, add_embedding, fit_files, fit_framing

        self.meta["framing"] = fit_framing(self.data, list(self.config.tasks))
        if self.cfg.gate_frr is None:
            self.meta["frame_gate"] = {"unavailable": "not requested (--no-frame-gate)"}
            return
        models = {p: Path(self.files[MODEL_FILES[p]]) for p in self.meta["precisions"]}
        try:
            self.files[FRAME_GATE_FILE], self.meta["frame_gate"] = fit_files(
                models, self.spec, list(self.config.tasks), self.data, self.cfg.gate_frr, log=_log)
            if FP16_FILE in self.files:      # TensorRT's FP16 graph: the same output (fp32 statistics serve it)
                add_embedding(Path(self.files[FP16_FILE]), list(self.config.tasks))
        except GateUnavailable as exc:
            _log(f"frame gate: no distance check: {exc.message}")
            self.meta["frame_gate"] = {"unavailable": exc.message}

    def write(self) -> Path:
        """Latency table, report, model card, PNG, parity inputs; the bundle, atomically."""
        self.meta["latency"] = _latency(self.files, self.spec, self.target, self.cfg.latency_runs)
        report = report_markdown(self.meta, self.rows, self.cfg.gate)
        self.files["report.md"] = report
        self.files["README.md"] = model_card(self.meta, report)
        png = report_png(self.meta, self.rows)
        if png:
            self.files["report.png"] = png
        self.files["parity_inputs.npz"] = _npz(self.ref_x, self.ref_out)
        return write_bundle(self.cfg.out, self.files, self.meta, make_zip=self.cfg.make_zip)

    def calibration(self):
        """The calibration set: ``--calib``, else built from the data's train split (cached by content)."""
        from usedge.quantize.calibration import cached_calibration, check_compatible, load_calibration

        cfg = self.cfg
        if cfg.calib:
            calib = load_calibration(cfg.calib)
            check_compatible(calib, self.spec)
            return calib
        return cached_calibration(self.data, self.spec, list(self.config.tasks), cfg.per_task, cfg.seed,
                                  self.meta["model_sha256"],
                                  allow_small=cfg.allow_small_calibration, log=_log)

    def quantize(self) -> None:
        """PTQ, gate; QAT when PTQ fails (or always/never, ``--qat``), gate; then the sensitivity fallback."""
        import onnx

        from usedge.backends.int8_check import CHECK_FILE
        from usedge.bundle.qdq import assert_trt_compatible, check_placement
        from usedge.quantize.int8 import require_weight_bits

        cfg, config = self.cfg, self.config
        calib = self.calibration()
        self.meta["calibration"] = {"manifest_sha256": calib.sha256, "count": len(calib),
                                    "per_task": calib.manifest["per_task"], "per_organ": calib.manifest["per_organ"],
                                    "allow_small": calib.manifest["allow_small"]}
        path = self.tmp / MODEL_FILES["int8"]
        scores = None
        if cfg.qat != "always":
            self.info["float_layers"] = _ptq(cfg, config, self.files, calib, path, self.target.int8_weight_bits)
            self.rows, scores = self.attempt(path, "PTQ")
        if cfg.qat == "always" or (cfg.qat == "auto" and failing(self.rows)):
            self.info.update(_qat(cfg, self.model, config, self.data, calib, path, self.target.int8_weight_bits),
                             method="qat")
            self.rows, scores = self.attempt(path, "QAT")
        if failing(self.rows) and cfg.max_float > 0:
            scores = self.sensitivity_fallback(onnx.load(str(path)), path, calib, scores)
        final = assert_trt_compatible(path)
        placement = check_placement(path)
        _log(placement.summary())
        bits = self.target.int8_weight_bits
        max_weight = require_weight_bits(onnx.load(str(path)), bits)
        self.files[CHECK_FILE] = _check_file(self.val, config, self.spec, path)
        check = self.machine_check(path, self.files[CHECK_FILE], bits)
        self.meta["int8"] = {"quantizers": final.quantizers, "signed_int8": final.int8, "zero_points_all_zero": True,
                             "weight_bits": bits, "max_abs_weight": max_weight, "check": check,
                             **self.info, "placement": {"ok": placement.ok, "violations": placement.by_rule(),
                                                        "float_inputs": list(placement.float_inputs),
                                                        "weighted_ops": placement.weighted_ops,
                                                        "residual_adds": placement.residual_adds},
                             "gate": [asdict(r) for r in self.rows], "gate_config": asdict(cfg.gate),
                             "gate_samples": _gate_samples(self.val, config),
                             "gate_machine": _machine(),
                             "passed": not failing(self.rows) and check["passed"]}
        self.files[MODEL_FILES["int8"]] = path
        self.meta["precisions"].append("int8")
        self.meta["accuracy"]["int8"] = scores.results
        self.meta["parity"]["int8"] = _parity(path, self.ref_x, self.ref_out, config, "int8")

    def machine_check(self, path: Path, check_bytes: bytes, bits: int) -> dict:
        """The int8 graph on every backend here against its exact Q/DQ outputs (usedge.backends.int8_check), and,
        on a VNNI machine, OpenVINO as it runs without VNNI (``ONEDNN_MAX_CPU_ISA=AVX2``): 7-bit weights must
        pass there too (that is what the ``cpu`` target promises); for 8-bit weights it is reported."""
        from usedge._cpu import cpu_isa
        from usedge.backends import available_backends
        from usedge.backends.int8_check import check_emulated, check_model, load_check

        file = self.tmp / "int8_check.npz"
        file.write_bytes(check_bytes)
        check = load_check(file)
        here = {b: check_model(path, check, self.spec, b, use_cache=False) for b in available_backends()}
        out = {"here": here, "passed": all(r["passed"] for r in here.values())}
        for name, r in here.items():
            _log(f"int8 check {name} on {r['machine']['label']}: "
                 + ("exact within tolerance" if r["passed"] else f"WRONG on {r['failing']}"))
        if cpu_isa().vnni and "openvino" in here:
            emu = check_emulated(path, file, self.spec, "AVX2")
            out["emulated_avx2"] = emu
            _log(f"int8 check openvino without VNNI (ONEDNN_MAX_CPU_ISA=AVX2, {bits}-bit weights): "
                 + {True: "exact within tolerance", None: f"not run ({emu.get('reason')})"}.get(
                     emu["passed"], f"WRONG on {emu.get('failing')}"))
            if bits == 7 and emu["passed"] is False:
                out["passed"] = False
        return out

    def attempt(self, path: Path, what: str) -> tuple[list[GateRow], Scores]:
        """Score the int8 graph at ``path`` and gate it against fp32 (one counted attempt)."""
        scores = _score(path, self.spec, self.val, self.config)
        rows = _gate(self.fp32, scores, self.cfg.gate)
        self.info["attempts"] += 1
        _log(f"gate attempt {self.info['attempts']} ({what}): "
             + ("pass" if not failing(rows) else f"failing {failing(rows)}"))
        return rows, scores

    def sensitivity_fallback(self, model, path: Path, calib, scores: Scores) -> Scores:
        """Rank the failing tasks' activation quantizers by sensitivity; keep the fewest top ones in float that
        pass the gate (doubling, then bisection). Updates ``rows`` / ``info``; returns the scores kept."""
        import onnx

        from usedge.backends import open_backend
        from usedge.quantize.sensitivity import activation_pairs, bypass, fewest_passing, probe_backend, rank

        cfg = self.cfg
        bad = failing(self.rows)
        outputs = [o.name for s in self.config.task_specs if s.id in bad for o in s.outputs]
        idx = [i for i, s in enumerate(calib.manifest["samples"]) if s["task_id"] in bad][:cfg.sensitivity_images]
        probe = calib.images[idx] if idx else calib.images[:cfg.sensitivity_images]
        backend = probe_backend()
        ref = open_backend(backend, self.files[MODEL_FILES["fp32"]]).infer(probe)
        ranked = rank(model, ref, outputs, lambda p: open_backend(backend, p).infer(probe))
        limit = min(len(ranked), cfg.max_float)
        _log(f"sensitivity: {len(ranked)} of the failing tasks' activation quantizers help when float; "
             f"trying the top 1..{limit} of {len(activation_pairs(model))}")
        if limit == 0:
            return scores

        def attempt(k: int):
            chosen = [p for p, _ in ranked[:k]]
            onnx.save(bypass(model, [p.q for p in chosen]), str(path))
            gate_rows, res = self.attempt(path, f"{k} activations float")
            return not failing(gate_rows), (gate_rows, res, [p.tensor for p in chosen])

        k, (self.rows, scores, self.info["float_activations"]) = fewest_passing(attempt, limit,
                                                                                 cfg.max_gate_attempts - 1)
        if k is not None:
            onnx.save(bypass(model, [p.q for p, _ in ranked[:k]]), str(path))  # the last try may have failed
        return scores


def _export_fp32(model, config, tmp: Path, target) -> tuple[dict, dict]:
    import onnx

    import usedge
    from usedge.models.onnx import export_onnx, model_metadata

    path = tmp / MODEL_FILES["fp32"]
    info = export_onnx(model, config, path, dynamic_batch=target.dynamic_batch)
    _log(f"fp32 ONNX: opset {info.opset}, {len(info.outputs)} outputs, simplifier: {info.simplifier}")
    md = model_metadata(model, config)
    meta = {
        "usedge_version": usedge.__version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": json.loads(md["usedge.model"]), "tasks": json.loads(md["usedge.tasks"]),
        "input": {"name": "images", "shape": ["N" if target.dynamic_batch else 1, 3, config.input_size,
                                              config.input_size], "dtype": "float32",
                  "preprocess": PreprocessSpec.from_config(config).to_dict()},
        "outputs": [{"name": o.name, "task": o.task_id, "field": o.field, "shape": list(o.shape), "dtype": "float32"}
                    for s in config.task_specs for o in s.outputs],
        "export": asdict(info) | {"path": MODEL_FILES["fp32"]}, "target": asdict(target),
        "versions": {"onnx": onnx.__version__, "python": platform.python_version()},
        "precisions": ["fp32"], "model_sha256": model_hash(path),
    }
    return {MODEL_FILES["fp32"]: path}, meta


def _export_fp16(fp32: Path, path: Path, keep_fp32) -> tuple[Path, str]:
    import onnx

    from usedge.models.onnx import check, to_fp16

    proto, how = to_fp16(onnx.load(str(fp32)), keep_fp32)
    check(proto)
    onnx.save(proto, str(path))
    return path, how


def _torch_reference(model, config, tmp: Path) -> dict[str, Path]:
    """The float weights as a usedge checkpoint under torch/: the torch backend's reference for parity."""
    from usedge.models.checkpoint import CONFIG, WEIGHTS, save_checkpoint

    folder = save_checkpoint(tmp / "torch", model, config, meta={"role": "torch reference for parity"})
    return {f"torch/{WEIGHTS}": folder / WEIGHTS, f"torch/{CONFIG}": folder / CONFIG}


def _parity_inputs(model, config, data: Path, n_per_task: int = 1):
    """A few real preprocessed images (one per task) and the torch model's outputs on them."""
    import torch

    from usedge.data.fmcuia import load_split
    from usedge.data.preprocess import preprocess

    samples, seen = [], set()
    for s in load_split(data, "val" if (data / "val").is_dir() else "train", list(config.tasks)):
        if s.task_id not in seen:
            samples.append(s)
            seen.add(s.task_id)
    x = np.stack([preprocess(s.load_image(), PreprocessSpec.from_config(config)) for s in samples[:16]])
    with torch.no_grad():
        out = {k: v.float().numpy() for k, v in model.eval()(torch.from_numpy(x)).items()}
    return x, out


def _parity(path: Path, x: np.ndarray, ref: dict, config, precision: str) -> dict:
    from usedge.backends.parity import parity_by_backend

    result = parity_by_backend(path, x, ref, config.task_specs, config.input_size, precision)
    for name, r in result.items():
        verdict = {True: "ok", False: "MISMATCH", None: "reported (not judged)"}[r["passed"]]
        _log(f"parity {precision} {name} vs torch: {verdict}")
    return result


def _val_samples(data: Path, config):
    from usedge.data.fmcuia import load_split

    split = "val" if (data / "val" / "csv_files").is_dir() else "train"
    return load_split(data, split, list(config.tasks))


@dataclass
class Scores:
    """Per-task metrics of one model on the gate set, and each image's headline metric (for pairing)."""

    results: dict[str, dict]
    samples: dict[str, np.ndarray]


def _score(path: Path, spec: PreprocessSpec, val, config) -> Scores:
    from usedge.backends import available_backends, open_backend
    from usedge.metrics.classification import UndefinedAUCWarning
    from usedge.metrics.scoring import evaluate_predictor

    backend = open_backend(available_backends()[0], path)
    with warnings.catch_warnings():   # the gate compares per-image scores; AUC is not part of it
        warnings.simplefilter("ignore", UndefinedAUCWarning)
        report = evaluate_predictor(lambda x, task: backend.infer(x), spec, val, list(config.tasks))
        return Scores(report.results(), report.per_sample())


def _gate(fp32: Scores, int8: Scores, gate: GateConfig) -> list[GateRow]:
    return apply_gate(fp32.results, int8.results, gate, fp32.samples, int8.samples)


def _ptq(cfg, config, files, calib, path: Path, weight_bits: int) -> list[str]:
    """NNCF post-training quantization of the fp32 ONNX; returns the ONNX scopes kept in float."""
    from usedge.bundle.qdq import assert_trt_compatible
    from usedge.quantize.int8 import head_arithmetic_scopes, quantize_onnx

    ignored = head_arithmetic_scopes(config.task_specs)
    _log(f"INT8 post-training quantization (NNCF, {len(calib)} calibration images, {weight_bits}-bit weights)"
         + (f", kept in float: {ignored}" if ignored else ""))
    quantize_onnx(files[MODEL_FILES["fp32"]], calib.images, path, ignored_patterns=ignored,
                  range_estimator=cfg.range_estimator, weight_bits=weight_bits)
    assert_trt_compatible(path)
    return ignored


def _qat(cfg, model, config, data, calib, path: Path, weight_bits: int) -> dict:
    """Quantization-aware fine-tuning of the float model (usedge.quantize.qat) into ``path``."""
    from usedge.quantize.int8 import head_arithmetic_scopes
    from usedge.quantize.qat import QATConfig, run_qat

    qcfg = QATConfig(steps=cfg.qat_steps, seed=cfg.seed, weight_bits=weight_bits)
    result = run_qat(model, config, calib.images, path, data=None if cfg.data is None else data, cfg=qcfg, log=_log)
    return {"float_layers": head_arithmetic_scopes(config.task_specs), "qat": asdict(result) | {"config": asdict(qcfg)}}


def _check_file(val, config, spec: PreprocessSpec, path: Path) -> bytes:
    """``int8_check.npz``: the first PER_TASK held-out images of every task and the int8 graph's exact outputs."""
    from usedge.backends.int8_check import PER_TASK, at_input_size, build

    chosen: dict[str, list] = {}
    for s in val:
        if len(chosen.setdefault(s.task_id, [])) < PER_TASK:
            chosen[s.task_id].append(s)
    pairs = [(at_input_size(s.load_image(), spec), t) for t in config.tasks for s in chosen.get(t, [])]
    return build([p[0] for p in pairs], [p[1] for p in pairs], path, spec)


def _machine() -> dict:
    """The CPU (instruction set as the runtimes use it) and runtime versions a gate or a latency ran on."""
    from importlib.metadata import PackageNotFoundError, version

    from usedge._cpu import cpu_isa

    versions = {}
    for pkg in ("openvino", "onnxruntime"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return cpu_isa().to_dict() | {"versions": versions}


def _gate_samples(val, config) -> dict[str, int]:
    counts = {t: 0 for t in config.tasks}
    for s in val:
        if s.task_id in counts:
            counts[s.task_id] += 1
    return counts


def _latency(files: dict, spec: PreprocessSpec, target, runs: int) -> dict:
    from usedge.backends import available_backends, open_backend

    x = np.random.default_rng(0).standard_normal((1, 3, spec.size, spec.size)).astype(np.float32)
    out = {}
    for precision, name in MODEL_FILES.items():
        if name not in files:
            continue
        out[precision] = {"file_mb": round(Path(files[name]).stat().st_size / 1e6, 2)}
        for backend in available_backends():
            b = open_backend(backend, files[name], threads=target.threads or 2)
            try:
                times = timed(lambda: b.infer(x), runs, warmup=10)
            finally:
                b.close()
            out[precision][backend] = {"p50_ms": round(float(np.median(times)), 3),
                                       "p95_ms": round(float(np.percentile(times, 95)), 3)}
    cpu = _machine()
    out["conditions"] = {"batch": 1, "size": spec.size, "threads": target.threads or 2, "runs": runs,
                         "machine": platform.machine(), "processor": cpu["model"], "isa": cpu["label"],
                         "vnni": cpu["vnni"], "versions": cpu["versions"]}
    return out


def _npz(x: np.ndarray, outputs: dict) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, images=x, **{f"ref::{k}": v for k, v in outputs.items()})
    return buf.getvalue()


__all__ = ["ExportConfig", "GateFailed", "run_export", "ConfigError"]

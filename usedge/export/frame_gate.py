"""Fitting the frame gate (usedge.runtime.gate; its format: usedge.bundle.frame_gate) at export: the embedding
output added to each graph, the in-distribution embeddings stored per precision, and the thresholds fitted on
held-out images at a stated false-rejection rate.

- **embedding**: per feature map the network has (the backbone stages its neck reads, the dense map, the stride-32
  map) the channel means and standard deviations over the image (usedge.models.onnx.add_embedding_output);
- **bank**: the embeddings of the data's train split (task-balanced: up to ``BANK_PER_TASK`` images of every task)
  through the first precision's graph, each map's part unit length, stored int8 (usedge.bundle.frame_gate);
- **distance**: per map the k-NN cosine distance to the bank over its held-out 99th percentile, summed; its
  threshold the ``1 - frr`` quantile of the held-out (val) images' distances, per precision;
- **quality limits**: the defaults (:class:`~usedge.runtime.gate.GateThresholds`), each relaxed to the
  ``frr / 4`` quantile of the held-out images where the default would reject more of them than that;
- the measured in-distribution rejection of each check and of the whole gate is recorded in ``metadata.json``.

:func:`fit_files` runs inside ``usedge export``; :func:`refit_bundle` adds the gate to an existing bundle
(``usedge gate-fit``), the shipped default included.
"""
from __future__ import annotations

import dataclasses
import io
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from usedge.bundle.frame_gate import GateThresholds, knn_distance, pack_bank, quality_reasons, unit_segments
from usedge.bundle.metadata import FRAME_GATE_FILE, MODEL_FILES
from usedge.data.preprocess import PreprocessSpec, model_input, normalize_input
from usedge.data.quality import quality_scores
from usedge.errors import DataError
from usedge.tasks import EMBEDDING_OUTPUT, TaskKind, get_task

DEFAULT_FRR = 0.01
DEFAULT_K = 1   # the nearest neighbour: measured best of 1, 5, 10 (docs/gate.md)
class GateUnavailable(DataError):
    """No distance gate can be fitted (too few images, no feature maps to tap); the export records why."""


#: train images per task in the bank (27 tasks: up to 648 rows)
BANK_PER_TASK = 24


def add_embedding(path: Path, tasks: Sequence[str]) -> list[tuple[int, int]]:
    """Add the ``frame.embedding`` output to the ONNX file at ``path`` (rewritten in place); its segments
    ((start, stop) columns per feature map); empty when the graph has no feature maps to tap."""
    import onnx

    from usedge.models.onnx import add_embedding_output

    specs = [get_task(t) for t in tasks]
    cls = [s.output_names[0] for s in specs if s.kind is TaskKind.CLASSIFICATION]
    seg = [s.output_names[0] for s in specs if s.kind is TaskKind.SEGMENTATION]
    proto = onnx.load(str(path))
    had = any(o.name == EMBEDDING_OUTPUT for o in proto.graph.output)
    taps = add_embedding_output(proto, cls, seg, EMBEDDING_OUTPUT)
    if taps and not had:
        onnx.checker.check_model(proto)
        onnx.save(proto, str(path))
    bounds, start = [], 0
    for _, c in taps:
        bounds.append((start, start + 2 * c))
        start += 2 * c
    return bounds


def embeddings(path: Path, smalls: np.ndarray, spec: PreprocessSpec, batch: int = 32) -> np.ndarray:
    """The ``frame.embedding`` rows of ``smalls`` (N×S×S[×3] uint8 model inputs) through the graph at ``path``."""
    return run_outputs(path, smalls, spec, [EMBEDDING_OUTPUT], batch)[EMBEDDING_OUTPUT]


def run_outputs(path: Path, smalls: np.ndarray, spec: PreprocessSpec, names: Sequence[str],
                batch: int = 32) -> dict[str, np.ndarray]:
    """Outputs ``names`` of the graph at ``path`` for ``smalls`` (N×S×S[×3] uint8 model inputs), N×... float32."""
    from usedge.backends import available_backends, open_backend

    backend = open_backend(available_backends()[0], path)
    try:
        step = min(batch, backend.input.batch_max or batch)
        rows: dict[str, list] = {n: [] for n in names}
        for i in range(0, len(smalls), step):
            x = np.stack([normalize_input(s, spec) for s in smalls[i:i + step]])
            out = backend.infer(x)
            for n in names:
                rows[n].append(np.asarray(out[n], np.float32).reshape(len(x), -1))
    finally:
        backend.close()
    return {n: np.concatenate(v) for n, v in rows.items()}


def fit_temperatures(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per classification task: the temperature fitted on all its held-out images, and the ECE before / after on
    the odd images with T fitted on the even ones (no image both fits and judges)."""
    from usedge.metrics.calibration import expected_calibration_error, fit_temperature, softmax

    out = {}
    for task, z in logits.items():
        y = labels[task]
        if len(y) < 10:
            continue
        if (z.argmax(axis=1) == y).all():   # no error to learn from: T is not identifiable (it would go to 0)
            out[task] = {"temperature": 1.0, "images": int(len(y)), "note": "not fitted: no misclassified "
                         "held-out image (T would sharpen every answer to certainty)"}
            continue
        t_half = fit_temperature(z[::2], y[::2])
        out[task] = {"temperature": round(fit_temperature(z, y), 4), "images": int(len(y)),
                     "ece_before": round(expected_calibration_error(softmax(z[1::2]), y[1::2]), 4),
                     "ece_after": round(expected_calibration_error(softmax(z[1::2], t_half), y[1::2]), 4)}
    return out


def fit_quality(smalls: Sequence[np.ndarray], frr: float) -> tuple[GateThresholds, dict]:
    """The quality limits for held-out images ``smalls``, and each check's in-distribution rejection."""
    scores = [quality_scores(s) for s in smalls]
    col = {k: np.array([s[k] for s in scores]) for k in scores[0]}
    t = GateThresholds()
    q = frr / 4
    lows = {"min_std": "std", "min_texture": "texture"}
    highs = {"max_saturated": "saturated", "max_colour": "colour"}
    for limit, key in lows.items():
        if np.mean(col[key] < getattr(t, limit)) > q:
            t = dataclasses.replace(t, **{limit: float(np.quantile(col[key], q))})
    for limit, key in highs.items():
        if np.mean(col[key] > getattr(t, limit)) > q:
            t = dataclasses.replace(t, **{limit: float(np.quantile(col[key], 1 - q))})
    rejected = np.array([bool(quality_reasons(s, t)) for s in scores])
    return t, {"rejected": round(float(rejected.mean()), 4), "images": len(scores)}


def fit_files(models: dict[str, Path], spec: PreprocessSpec, tasks: Sequence[str], data: Path,
              frr: float = DEFAULT_FRR, k: int = DEFAULT_K, log: Callable[[str], None] = lambda m: None
              ) -> tuple[bytes, dict]:
    """Add the embedding output to each ``models`` file (precision -> ONNX path, rewritten in place) and fit the
    gate on ``data`` (an FMC-UIA layout: train split for the bank, val for the thresholds). Returns
    (frame_gate.npz bytes, the metadata section); :class:`GateUnavailable` when it cannot be fitted."""
    bank_smalls, _ = _smalls(data, "train", tasks, spec, BANK_PER_TASK)
    val_smalls, val_samples = _smalls(data, "val", tasks, spec, None)
    if len(bank_smalls) < 20 or len(val_smalls) < 1 / frr:   # checked first: the graphs stay as they were
        raise GateUnavailable(f"the frame gate needs more images: {len(bank_smalls)} train (>= 20) and "
                              f"{len(val_smalls)} held-out (>= {int(1 / frr)} for a {frr:.1%} false-rejection "
                              "rate).", fix="export with more data (--data, or the default phantom), or a larger "
                                            "--gate-frr")
    segments = [add_embedding(p, tasks) for p in models.values()]
    if not segments[0] or any(seg != segments[0] for seg in segments):
        raise GateUnavailable("the graph has no feature maps to tap (no neck laterals, dense map or pooled "
                              "classification feature were found).", fix="the image-quality checks run without it")
    segments = segments[0]
    quality, quality_stats = fit_quality(val_smalls, frr)
    first = next(iter(models))      # one bank (fp32's features); each precision's own scales and threshold
    bank = unit_segments(embeddings(models[first], bank_smalls, spec), segments)
    cls = [t for t in tasks if get_task(t).kind is TaskKind.CLASSIFICATION]
    rows = {t: np.array([i for i, s in enumerate(val_samples) if s.task_id == t], np.int64) for t in cls}
    labels = {t: np.array([val_samples[i].label for i in rows[t]], np.int64) for t in cls}
    ood, confidence = {}, {}
    for precision, path in models.items():
        outs = run_outputs(path, val_smalls, spec, [EMBEDDING_OUTPUT] + [get_task(t).output_names[0] for t in cls])
        val = outs[EMBEDDING_OUTPUT]
        confidence[precision] = fit_temperatures(
            {t: outs[get_task(t).output_names[0]][rows[t]] for t in cls if len(rows[t])}, labels)
        per = [knn_distance(bank, val, k, [seg]) for seg in segments]
        scales = [float(np.quantile(d, 1 - frr)) or 1.0 for d in per]
        d = knn_distance(bank, val, k, segments, scales)
        threshold = float(np.quantile(d, 1 - frr))
        ood[precision] = {"threshold": round(threshold, 6), "scales": [round(x, 6) for x in scales],
                          "median": round(float(np.median(d)), 6), "rejected": round(float(np.mean(d > threshold)), 4)}
        log(f"frame gate {precision}: distance threshold {threshold:.3f} at {frr:.1%} false rejection "
            f"({len(val_smalls)} held-out images; bank {len(bank)} images x {bank.shape[1]} features, "
            f"{len(segments)} feature maps)")
    buf = io.BytesIO()
    np.savez_compressed(buf, **pack_bank(bank, segments))
    meta = {"method": f"per feature map (channel means and SDs of {EMBEDDING_OUTPUT}): k-NN cosine distance "
                      f"(k={k}) to the train images, over its 99th percentile, summed", "k": k,
            "segments": [list(s) for s in segments], "bank_precision": first,
            "frr_target": frr, "bank_images": len(bank_smalls), "held_out_images": len(val_smalls),
            "ood": ood, "quality": {f.name: getattr(quality, f.name) for f in dataclasses.fields(quality)
                                    if f.name != "ood"},
            "quality_rejected": quality_stats["rejected"],
            "temperature": confidence}
    for precision, rows_ in confidence.items():
        if rows_:
            fitted = [r for r in rows_.values() if "ece_before" in r]
            before = np.mean([r["ece_before"] for r in fitted]) if fitted else float("nan")
            after = np.mean([r["ece_after"] for r in fitted]) if fitted else float("nan")
            log(f"temperature scaling {precision}: {len(fitted)} of {len(rows_)} classification tasks, mean ECE {before:.4f} -> "
                f"{after:.4f} (held-out halves)")
    return buf.getvalue(), meta


def fit_framing(data: Path, tasks: Sequence[str], per_task: int = BANK_PER_TASK) -> dict:
    """``metadata.json`` ``framing``: the training images' common width / height (usedge.data.preprocess.Framing),
    from up to ``per_task`` train images of each task (the val split when there is no train split)."""
    from usedge.data.fmcuia import load_split
    from usedge.data.preprocess import Framing

    split = "train" if (Path(data) / "train" / "csv_files").is_dir() else "val"
    if not (Path(data) / split / "csv_files").is_dir():
        return {**Framing().to_dict(), "images": 0, "note": "no images to fit on: crops are stretched"}
    chosen: dict[str, int] = {}
    shapes = []
    for s in load_split(data, split, list(tasks)):
        if chosen.get(s.task_id, 0) < per_task:
            chosen[s.task_id] = chosen.get(s.task_id, 0) + 1
            shapes.append(s.load_image().shape[:2])
    framing = Framing.fit(shapes)
    note = ("a crop to a scan region is padded with black to this width / height before the resize"
            if framing.aspect is not None else "the images do not share one shape: crops are stretched")
    return {**framing.to_dict(), "images": len(shapes), "note": note}


def _smalls(data: Path, split: str, tasks: Sequence[str], spec: PreprocessSpec,
            per_task: int | None) -> tuple[np.ndarray, list]:
    """(N×S×S×3 uint8 model inputs, their samples) of a split, up to ``per_task`` of each task."""
    from usedge.data.fmcuia import load_split

    if not (Path(data) / split / "csv_files").is_dir():
        return np.zeros((0, spec.size, spec.size, 3), np.uint8), []
    chosen: dict[str, int] = {}
    out, samples = [], []
    for s in load_split(data, split, list(tasks)):
        if per_task is not None and chosen.get(s.task_id, 0) >= per_task:
            continue
        chosen[s.task_id] = chosen.get(s.task_id, 0) + 1
        small = model_input(s.load_image(), spec)
        out.append(small if small.ndim == 3 else np.repeat(small[..., None], 3, axis=2))
        samples.append(s)
    return (np.stack(out) if out else np.zeros((0, spec.size, spec.size, 3), np.uint8)), samples


def refit_bundle(bundle: str | Path, data: str | Path | None = None, out: str | Path | None = None,
                 frr: float = DEFAULT_FRR, k: int = DEFAULT_K, log: Callable[[str], None] = lambda m: None,
                 gate: bool = True) -> Path:
    """Add (or refit) the frame gate of an existing bundle: its graphs gain the embedding output, it gains
    ``frame_gate.npz`` and ``metadata.json`` ``frame_gate`` and ``framing``; written atomically to ``out``
    (default: in place). ``data``: an FMC-UIA layout (default: the phantom the export uses for the model's
    tasks). ``gate=False``: only the framing (graphs and gate as they were)."""
    from usedge.bundle import load_bundle, write_bundle

    b = load_bundle(bundle)
    if data is None:
        from usedge.export.defaults import default_data
        from usedge.tasks import parse_tasks

        data = default_data(16, parse_tasks(b.tasks))
    with tempfile.TemporaryDirectory(prefix="usedge-gate-fit-") as tmp:
        files = {}
        for name in b.metadata["files"]:
            files[name] = Path(tmp) / name
            files[name].parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(b.path / name, files[name])
        meta = {k_: v for k_, v in b.metadata.items() if k_ not in ("files", "schema_version")}
        if gate:
            models = {p: files[MODEL_FILES[p]] for p in b.precisions}
            files[FRAME_GATE_FILE], meta["frame_gate"] = fit_files(models, b.preprocess, b.tasks, Path(data), frr, k, log)
        meta["framing"] = fit_framing(Path(data), b.tasks)
        log(f"framing: aspect {meta['framing']['aspect']} ({meta['framing']['images']} images)")
        return write_bundle(out or b.path, files, meta)


__all__ = ["BANK_PER_TASK", "DEFAULT_FRR", "DEFAULT_K", "GateUnavailable", "add_embedding", "embeddings", "fit_files",
           "fit_framing", "fit_quality", "fit_temperatures", "refit_bundle", "run_outputs"]

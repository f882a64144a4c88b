"""``usedge measure``: the clinical measurements of an image, a DICOM, a cine or a folder, in mm from the DICOM's
calibration (or --mm-per-pixel), tracked over a cine, printed as a table or JSON, and written as CSV, a DICOM SR
(TID 1500) and a DICOM SEG."""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("measure")
@click.argument("source")
@click.option("--bundle", type=click.Path(exists=True), default=None,
              help="Bundle folder/.zip from `usedge export` (default: the packaged INT8 default bundle).")
@click.option("--tasks", default=None, help="Comma-separated tasks (default: all of the bundle's).")
@click.option("--backend", default="auto", show_default=True)
@click.option("--precision", default="auto", show_default=True)
@click.option("--mm-per-pixel", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Pixel size in mm for every frame (default: the DICOM's ultrasound region; else lengths in px).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines: one per frame, then the summary.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Write every frame's measurements as CSV.")
@click.option("--sr", "sr_path", type=click.Path(dir_okay=False), default=None,
              help="Write a DICOM Structured Report (TID 1500) of the measurements (DICOM input only).")
@click.option("--seg", "seg_path", type=click.Path(dir_okay=False), default=None,
              help="Write a DICOM Segmentation of the key frame's masks (DICOM input only).")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames.")
@click.option("--window", type=click.IntRange(min=1), default=30, show_default=True,
              help="Frames a cine's measurements are tracked over.")
def measure(source, bundle, tasks, backend, precision, mm_per_pixel, as_json, csv_path, sr_path, seg_path,
            max_frames, window) -> None:
    """Measure SOURCE (an image, a DICOM file, a video or a folder of images): HC, BPD, AC, FL, GA, EFW, AoP,
    cervical length, lesion sizes, LV size ... as the tasks allow; withheld ones say why."""
    import usedge
    from usedge._io import check_outputs
    from usedge.cli.stream import default_bundle
    from usedge.errors import ConfigError
    from usedge.measure import Measurer
    from usedge.stream import Stream, open_source

    check_outputs({"--csv": csv_path, "--sr": sr_path, "--seg": seg_path},
                  {"SOURCE": source if Path(source).exists() else None, "--bundle": bundle})
    dicom = _dicom_source(source) if (sr_path or seg_path) else None
    src = open_source(source)
    if getattr(src, "live", False) and max_frames is None:
        raise ConfigError(f"{source} is a live source: measuring it needs an end.",
                          fix="pass --max-frames N, or use `usedge stream --measure` for live measurement.")
    measurer = Measurer(mm_per_pixel=mm_per_pixel, window=window, min_accepted=min(5, window))
    predictor = usedge.load(bundle or str(default_bundle()), backend=backend, precision=precision)
    rows, kept, last = [], {}, None
    with predictor, Stream(src, predictor, tasks, measure=measurer, mode="lossless", max_frames=max_frames) as s:
        for result in s:
            last = result
            index = result.index if result.index is not None else len(rows)
            rows += [(index, m) for m in result.measurements]
            if as_json:
                click.echo(json.dumps({"frame": index, "measurements": [m.to_json() for m in result.measurements]}))
            kept = _keep_key_frames(kept, result, index, measurer.tracker.summary(), window)
        s.raise_for_error()
    if last is None:
        raise ConfigError(f"{source} gave no frame to measure.", fix="check the file (usedge stream SOURCE).")
    frames = len({i for i, _ in rows}) or 1
    tracked, exam = measurer.tracker.summary(), measurer.tracker.exam()
    if as_json:
        click.echo(json.dumps({"summary": {k: t.to_json() for k, t in tracked.items()},
                               "exam": [m.to_json() for m in exam]}))
    else:
        click.echo(_table(last.measurements if frames == 1 else None, tracked if frames > 1 else None, exam))
    if csv_path:
        _write_csv(csv_path, rows)
    if dicom is not None:
        _write_dicom(dicom, sr_path, seg_path, last if frames == 1 else None, tracked, exam, kept, frames)


def _dicom_source(source: str):
    import pydicom

    from usedge.data.dicom import is_dicom_file
    from usedge.errors import ConfigError

    if not (Path(source).is_file() and is_dicom_file(source)):
        raise ConfigError(f"--sr and --seg describe a DICOM instance; {source} is not a DICOM file.",
                          fix="measure a DICOM file, or write --csv / --json instead.")
    return pydicom.dcmread(source, stop_before_pixels=True)


def _keep_key_frames(kept: dict, result, index: int, tracked: dict, window: int) -> dict:
    """The results a SEG may be written from: the frames of the tracker's window (a median's best frame is one of
    them) and every frame some measurement calls its best so far; older ones are let go, so a long cine does not
    pile up masks."""
    best = {t.best_frame for t in tracked.values() if t.best_frame is not None}
    kept = {i: r for i, r in kept.items() if i in best or i > index - window}
    kept[index] = result
    return kept


def _table(frame_measurements, tracked, exam) -> str:
    lines = ["| measurement | value | unit | note |", "|---|---|---|---|"]
    if frame_measurements is not None:
        for m in frame_measurements:
            value = "withheld" if m.value is None else f"{m.value:.2f}"
            if m.unit == "bool" and m.value is not None:
                value = "yes" if m.value else "no"
            lesion = f"lesion {m.detail['lesion']}; " if m.detail and "lesion" in m.detail else ""
            lines.append(f"| {m.name} | {value} | {m.unit} | {lesion}{m.withheld or ''} |")
    for name, t in (tracked or {}).items():
        value = "withheld" if t.value is None else f"{t.value:.2f} ± {t.spread:.2f}"
        note = t.withheld or f"{t.accepted}/{t.seen} frames, best frame {t.best_frame}"
        lines.append(f"| {name} | {value} | {t.unit} | {note} |")
    for m in _relevant(exam, set(tracked or ()) | {m.name for m in frame_measurements or ()}):
        value = "withheld" if m.value is None else f"{m.value:.2f}"
        extra = ", ".join(f"{k} {v}" for k, v in (m.detail or {}).items() if k in ("text", "formula", "centile"))
        lines.append(f"| {m.name} | {value} | {m.unit} | {m.withheld or extra} |")
    return "\n".join(lines)


def _relevant(exam, measured: set[str]) -> list:
    """The exam answers some input of which was measured at all (no EFW line on a thyroid scan)."""
    inputs = {"GA": ("HC",), "EFW": ("AC", "FL"), "LV_EF": ("LV_volume",)}
    return [m for m in exam if measured & set(inputs.get(m.name, ()))]


def _write_csv(path: str, rows) -> None:
    import csv
    import io

    from usedge._io import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["frame", "name", "lesion", "value", "unit", "withheld", "calibration", "mm_per_px"])
    for index, m in rows:
        cal = m.calibration or {}
        mm = cal.get("mm_per_px")
        w.writerow([index, m.name, (m.detail or {}).get("lesion", ""), "" if m.value is None else f"{m.value:.4f}",
                    m.unit, m.withheld or "", cal.get("source", ""), "" if mm is None else f"{mm[0]}x{mm[1]}"])
    atomic_write_text(Path(path), buf.getvalue())
    click.echo(f"wrote {path}")


def _write_dicom(ds, sr_path, seg_path, single, tracked, exam, kept, frames) -> None:
    from usedge import __version__
    from usedge.measure import Measurement
    from usedge.measure.dicom_out import masks_of, write_seg, write_sr

    key = next((t.best_frame for t in tracked.values() if t.best_frame is not None and t.best_frame in kept),
               max(kept))
    if sr_path:
        if single is not None:
            items, frame = single.measurements, 1
        else:                          # a cine: the tracked medians (over frames, so no one frame is referenced)
            items = [Measurement(t.name.split("#")[0], t.value, t.unit, t.withheld,
                                 {"frames": t.accepted}) for t in tracked.values()] + _relevant(exam, set(tracked))
            frame = None
        path, skipped = write_sr(ds, items, sr_path, frame_number=frame, software=f"usedge {__version__}")
        click.echo(f"wrote {path} (DICOM SR, TID 1500)" + (f"; left out: {'; '.join(skipped)}" if skipped else ""))
    if seg_path:
        result = kept[key]
        path = write_seg(ds, masks_of(result), seg_path, frame_number=key + 1 if frames > 1 else None,
                         software="usedge", version=__version__)
        click.echo(f"wrote {path} (DICOM SEG of frame {key + 1 if frames > 1 else 1})")

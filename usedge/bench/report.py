"""The bench table's writers: Markdown, CSV, JSON, the latency bar chart and the latency-vs-accuracy scatter
(PNG), written atomically next to each other. The shared figure helpers (:func:`new_figure`, :func:`save_png`)
and :func:`write_outputs` serve the profile, scaling and streaming reports too."""
from __future__ import annotations

import importlib
import io
from dataclasses import asdict
from pathlib import Path

from usedge.bench.harness import (
    _DIGITS,
    HEADERS,
    TABLE_ORDER,
    BenchResult,
    BenchRow,
)


def _cell(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{_DIGITS.get(name, 2)}f}"
    return str(value).replace("|", "\\|")


def to_markdown(result: BenchResult) -> str:
    m = result.machine
    lines = [f"# usedge bench: {result.bundle}", "", f"`{result.command}`", "",
             *[f"- {k}: {v}" for k, v in m.items()],
             f"- settings: {', '.join(f'{k}={v}' for k, v in result.settings.items())}", "",
             "| " + " | ".join(HEADERS[c] for c in TABLE_ORDER) + " |",
             "|" + "---|" * len(TABLE_ORDER)]
    for row in result.rows:
        d = asdict(row)
        lines.append("| " + " | ".join(_cell(c, d[c]) for c in TABLE_ORDER) + " |")
    lines += ["", "Latency: bare backend inference of one batch (p50 / p95 / p99), FPS = batch / p50; Predictor "
              "p50: the full Predictor on model-sized frames. Warm-up excluded. Peak RSS: the bench process's "
              "peak so far (monotone)."]
    return "\n".join(lines) + "\n"


def new_figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas (no pyplot); None when matplotlib is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: str | Path, tight: bool = True) -> Path:
    """Write ``fig`` as a PNG atomically (``tight``: tight_layout first)."""
    from usedge._io import atomic_write_bytes

    if tight:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


def write_chart(result: BenchResult, path: str | Path) -> Path | None:
    """Bar chart of bare p50 latency per backend × precision (× batch); None when matplotlib is missing or no
    row ran."""
    rows = [r for r in result.rows if r.ok and r.p50_ms is not None]
    fig = new_figure(max(4.0, 1.2 * len(rows)), 3.5) if rows else None
    if fig is None:
        return None
    many = len({r.batch for r in rows}) > 1
    labels = [f"{r.backend}\n{r.precision}" + (f" b{r.batch}" if many else "") for r in rows]
    ax = fig.add_subplot()
    bars = ax.bar(range(len(rows)), [r.p50_ms for r in rows], color="tab:blue")
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("p50 latency (ms)")
    ax.set_title(f"usedge bench: {Path(result.bundle).name}", fontsize=10)
    return save_png(fig, path)


SCORE_LABELS = {"dice": "mean Dice", "accuracy": "mean accuracy", "iou": "mean IoU",
                "mre_px": "mean MRE px (lower is better)"}


def scatter_rows(result: BenchResult) -> list[BenchRow]:
    """The rows a latency-vs-accuracy scatter shows: ok rows with scores at the smallest batch that has any."""
    rows = [r for r in result.rows if r.ok and r.p50_ms is not None
            and any(getattr(r, c) is not None for c in SCORE_LABELS)]
    smallest = min((r.batch for r in rows), default=None)
    return [r for r in rows if r.batch == smallest]


def write_scatter(result: BenchResult, path: str | Path) -> Path | None:
    """Latency vs accuracy: one subplot per task family scored, x = bare p50 ms, one point per backend /
    precision (smallest batch), named in the legend; None when matplotlib is missing or no row has scores."""
    rows = scatter_rows(result)
    families = [c for c in SCORE_LABELS if any(getattr(r, c) is not None for r in rows)]
    fig = new_figure(2.9 * len(families) + 1.6, 3.0) if families else None
    if fig is None:
        return None
    markers = dict(zip(sorted({r.backend for r in rows}), "osD^v"))
    for i, column in enumerate(families):
        ax = fig.add_subplot(1, len(families), i + 1)
        for n, r in enumerate(rows):
            if getattr(r, column) is not None:
                ax.scatter(r.p50_ms, getattr(r, column), s=30, marker=markers[r.backend], color=f"C{n}",
                           label=f"{r.backend}/{r.precision}", alpha=0.8)
        ax.set_xlabel(f"p50 ms (batch {rows[0].batch})", fontsize=8)
        ax.set_ylabel(SCORE_LABELS[column], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.margins(0.2)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.suptitle(f"latency vs accuracy: {Path(result.bundle).name}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / fig.get_figwidth(), 1))
    fig.legend(handles, labels, loc="center right", fontsize=7)
    return save_png(fig, path, tight=False)


def write_outputs(out: str | Path, files: dict[str, tuple[str, object]]) -> dict[str, Path]:
    """Write ``files`` (key -> (file name, text or JSON-serialisable object)) into ``out`` atomically; returns
    key -> path. Every report writer of ``usedge bench`` goes through here."""
    from usedge._io import atomic_write_json, atomic_write_text

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    return {key: atomic_write_text(folder / name, body) if isinstance(body, str) else
            atomic_write_json(folder / name, body) for key, (name, body) in files.items()}


def write_reports(result: BenchResult, out: str | Path) -> dict[str, Path]:
    """bench.md, bench.csv, bench.json in ``out``, atomically; with matplotlib also bench.png (p50 bars) and,
    when rows were scored, bench_scatter.png (latency vs accuracy)."""
    folder = Path(out)
    paths = write_outputs(folder, {"md": ("bench.md", to_markdown(result)), "csv": ("bench.csv", result.to_csv()),
                                   "json": ("bench.json", result.to_dict())})
    for key, write, name in (("png", write_chart, "bench.png"), ("scatter", write_scatter, "bench_scatter.png")):
        png = write(result, folder / name)
        if png is not None:
            paths[key] = png
    return paths


__all__ = ["new_figure", "save_png", "scatter_rows", "to_markdown", "write_chart", "write_outputs",
           "write_reports", "write_scatter"]

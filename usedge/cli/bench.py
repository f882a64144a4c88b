"""``usedge bench``: one table of latency, size, memory and accuracy per backend × precision × batch."""
from __future__ import annotations

import shlex
from pathlib import Path

import click

from usedge.errors import ConfigError

DEFAULT_BUNDLE = Path("out/bundle")


def _default_bundle() -> Path:
    if (DEFAULT_BUNDLE / "metadata.json").is_file():
        return DEFAULT_BUNDLE
    raise ConfigError(f"no bundle given and none at {DEFAULT_BUNDLE}/.",
                      fix="run `usedge export` first, or pass --bundle PATH.")


def _command(bundle, backends, precisions, batch, threads, runs, warmup, data, max_eval, out) -> str:
    args = ["usedge", "bench", "--bundle", str(bundle), "--backends", backends, "--precisions", precisions,
            "--batch", batch, "--runs", str(runs), "--warmup", str(warmup), "--out", str(out)]
    if threads:
        args += ["--threads", str(threads)]
    if data:
        args += ["--data", str(data), "--max-eval-per-task", str(max_eval)]
    return shlex.join(args)


@click.command()
@click.option("--bundle", type=click.Path(exists=True), default=None,
              help="Bundle folder or .zip (default: out/bundle).")
@click.option("--backends", default="all", show_default=True,
              help="all, or a comma list of openvino, onnxruntime, tensorrt, torch.")
@click.option("--precisions", default="all", show_default=True, help="all (fp32,int8), or a comma list.")
@click.option("--batch", default="1", show_default=True, help="Batch sizes, comma list (e.g. 1,4).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Pin backend threads (default: theirs).")
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True, help="Timed calls per row.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True, help="Untimed calls first.")
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="Labelled folder: its val/ split scores each backend × precision.")
@click.option("--max-eval-per-task", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--teacher/--no-teacher", default=False, show_default=True,
              help="Also time the B4 teacher (as shipped: one torch forward per task; and one pass) at the bundle's "
                   "input size, and print the ratios (needs the train extra).")
@click.option("--teacher-runs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/bench", show_default=True)
def bench(bundle, backends, precisions, batch, threads, runs, warmup, data, max_eval_per_task, teacher, teacher_runs,
          out) -> None:
    """Benchmark a bundle on every backend × precision × batch (rows that cannot run say why)."""
    from usedge.bench import run_bench, to_markdown, write_reports

    bundle = Path(bundle) if bundle else _default_bundle()
    command = _command(bundle, backends, precisions, batch, threads, runs, warmup, data, max_eval_per_task, out)
    result = run_bench(bundle, backends=backends, precisions=precisions, batches=batch, threads=threads,
                       runs=runs, warmup=warmup, data=data, max_eval_per_task=max_eval_per_task, command=command)
    paths = write_reports(result, out)
    click.echo(to_markdown(result))
    if teacher:
        paths["teacher"] = _teacher(result, threads, teacher_runs, Path(out))
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))


def _teacher(result, threads, runs: int, out: Path) -> Path:
    """Time the B4 teacher at the bundle's input size; print and write teacher.md next to the bench report."""
    from usedge._io import atomic_write_text
    from usedge.bench.teacher import bench_teacher, side_by_side
    from usedge.export.bundle import load_bundle

    size = load_bundle(result.bundle, verify=False).preprocess.size
    text = side_by_side(bench_teacher(size, runs=runs, threads=threads), result.rows, size)
    click.echo(text)
    atomic_write_text(out / "teacher.md", text)
    return out / "teacher.md"

"""``usedge data``: phantom data sets and cines, validation and summaries of the FMC-UIA layout."""
from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from usedge.data import fmcuia
from usedge.errors import UsedgeError
from usedge.tasks import parse_tasks

DEFAULT_PHANTOM_DIR = "data/phantom"


@click.group()
def data() -> None:
    """Data sets in the FMC-UIA layout: generate, validate, summarise."""


@data.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_PHANTOM_DIR,
              show_default=True, help="Output folder (gets train/ and val/).")
@click.option("--per-task", type=click.IntRange(min=1), default=4, show_default=True,
              help="Training images per task (val gets 20 % of that, at least 1).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--size", type=click.IntRange(min=64, max=2048), default=256, show_default=True,
              help="Image side in pixels.")
@click.option("--tasks", "selection", default="all", show_default=True,
              help="'all', task ids, a kind or an organ, comma separated.")
@click.option("--val-per-task", type=click.IntRange(min=0), default=None,
              help="Held-out (val/) images per task (default: 20 % of --per-task, at least 1).")
def phantom(out: Path, per_task: int, seed: int, size: int, selection: str, val_per_task: int | None) -> None:
    """Generate a labelled ultrasound phantom data set for the 27 tasks, in the challenge layout."""
    from usedge.data.phantom import generate_dataset

    info = generate_dataset(out, per_task=per_task, seed=seed, size=size, tasks=parse_tasks(selection),
                            val_per_task=val_per_task)
    click.echo(f"wrote {out} in {info['seconds']:.1f} s ({info['frames_per_s']:.0f} frames/s)")
    _print_summary(out)


@data.command("phantom-cine")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Video file to write (.mp4); labels go next to it as <stem>.labels.json.")
@click.option("--task", "task_id", default="fetal_head", show_default=True, help="Task id to animate.")
@click.option("--frames", type=click.IntRange(min=1), default=120, show_default=True)
@click.option("--fps", type=click.FloatRange(min=1, max=240), default=30.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--size", type=click.IntRange(min=64, max=2048), default=256, show_default=True)
def phantom_cine(out: Path, task_id: str, frames: int, fps: float, seed: int, size: int) -> None:
    """Write a phantom cine (smooth probe motion) with per-frame labels, for streaming tests."""
    from usedge.data.phantom import write_cine

    video, labels = write_cine(out, task_id, frames=frames, fps=fps, seed=seed, size=size)
    click.echo(f"wrote {video} and {labels}")


@data.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["all", *fmcuia.SPLITS]), default="all", show_default=True)
def validate(root: Path, split: str) -> None:
    """Check every CSV row, image and mask of a data set; list all problems (exit 1 if any)."""
    splits = fmcuia.find_splits(root) if split == "all" else [split]
    if not splits:
        raise UsedgeError(f"{root} has no train/csv_files or val/csv_files.",
                          fix="point at the data set root that holds train/ and val/.")
    total = 0
    for name in splits:
        report = fmcuia.validate_split(root, name)
        for problem in report.problems:
            click.echo(str(problem))
        click.echo(f"{name}: {len(report.samples)} good sample(s), {len(report.problems)} problem(s)")
        total += len(report.problems)
    raise SystemExit(1 if total else 0)


@data.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
def summary(root: Path) -> None:
    """Per-task image counts and label balance of a data set."""
    _print_summary(root)


def _print_summary(root: Path) -> None:
    console = Console()
    for split in fmcuia.find_splits(root):
        report = fmcuia.read_split(root, split)
        rows = fmcuia.summarize(report.samples)
        table = Table(title=f"{root}/{split}: {len(report.samples)} images, {len(rows)} tasks, "
                            f"{len(report.problems)} problem(s)")
        for col in ("task_id", "kind", "organ", "images", "labels"):
            table.add_column(col, justify="right" if col == "images" else "left", no_wrap=col == "task_id",
                             min_width=22 if col == "task_id" else None)
        for row in rows:
            table.add_row(*(str(row[c]) for c in ("task_id", "kind", "organ", "images", "labels")))
        console.print(table)

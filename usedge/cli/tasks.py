"""``usedge tasks``: list the 27 FMC-UIA tasks and their output names."""
from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from usedge.tasks import parse_tasks


@click.command()
@click.option("--tasks", "selection", default="all", show_default=True,
              help="'all', task ids, a kind (segmentation, ...) or an organ, comma separated.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--markdown", is_flag=True, help="Print the markdown table of docs/tasks.md.")
def tasks(selection: str, as_json: bool, markdown: bool) -> None:
    """List tasks: id, kind, organ, classes or points, output names."""
    specs = parse_tasks(selection)
    if as_json:
        click.echo(json.dumps([_row(s) for s in specs], indent=2))
        return
    if markdown:
        click.echo(markdown_table(specs), nl=False)
        return
    table = Table(title=f"{len(specs)} FMC-UIA task(s)")
    for col in ("task_id", "kind", "organ", "classes / points", "outputs"):
        table.add_column(col, no_wrap=col == "task_id", min_width=22 if col == "task_id" else None)
    for s in specs:
        names = s.point_names if s.point_names else s.class_names
        table.add_row(s.id, s.kind.value, s.organ, ", ".join(names) + (" *" if s.names_invented else ""),
                      ", ".join(s.output_names))
    Console().print(table)
    click.echo("* names chosen by usedge (the challenge publishes none)")


def _row(s) -> dict:
    return {"id": s.id, "kind": s.kind.value, "organ": s.organ, "num_classes": s.num_classes,
            "num_points": s.num_points, "class_names": list(s.class_names), "point_names": list(s.point_names),
            "names_invented": s.names_invented, "outputs": [o.name for o in s.outputs]}


def markdown_table(specs) -> str:
    """The task table of docs/tasks.md (a test keeps the doc equal to this)."""
    lines = ["| task id | kind | organ | classes (seg: incl. background) / points | outputs |",
             "|---|---|---|---|---|"]
    for s in specs:
        names = s.point_names if s.point_names else s.class_names
        count = f"{s.num_points} points" if s.point_names else f"{s.num_classes} classes"
        mark = " *" if s.names_invented else ""
        outputs = ", ".join(f"`{n}`" for n in s.output_names)
        lines.append(f"| `{s.id}` | {s.kind.csv_name} | {s.organ} | {count}: {', '.join(names)}{mark} | {outputs} |")
    return "\n".join(lines) + "\n"

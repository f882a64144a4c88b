"""Entry point of the ``usedge`` command."""
from __future__ import annotations

import sys

import click

from usedge import __version__
from usedge.cli import bench as bench_cli
from usedge.cli import build as build_cli
from usedge.cli import data as data_cli
from usedge.cli import demo as demo_cli
from usedge.cli import distill as distill_cli
from usedge.cli import export as export_cli
from usedge.cli import measure as measure_cli
from usedge.cli import serve as serve_cli
from usedge.cli import stream as stream_cli
from usedge.cli import tasks as tasks_cli
from usedge.cli import train as train_cli
from usedge.errors import UsedgeError, storage_error


class UsedgeGroup(click.Group):
    """A click group that prints UsedgeErrors (and a full or read-only disk) as a short message and exits 2,
    never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UsedgeError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)
        except OSError as exc:
            if (err := storage_error(exc, f"usedge {ctx.invoked_subcommand or ''}".strip())) is None:
                raise
            click.secho(f"error: {err}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=UsedgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="usedge")
@click.option("--verbose", is_flag=True, help="Show third-party INFO logs (NNCF, OpenVINO, ONNX Runtime, ...).")
def cli(verbose: bool) -> None:
    """usedge: multi-task ultrasound models at the point of care (FMC-UIA: 27 tasks).

    Pipeline: data -> train -> distill -> quantize/export -> engine -> runtime -> stream.
    """
    from usedge._logging import configure

    configure(True if verbose else None)


cli.add_command(data_cli.data)
cli.add_command(tasks_cli.tasks)
cli.add_command(train_cli.train)
cli.add_command(train_cli.evaluate)
cli.add_command(distill_cli.distill)
cli.add_command(export_cli.calibrate)
cli.add_command(export_cli.export)
cli.add_command(export_cli.gate_fit)
cli.add_command(export_cli.verify)
cli.add_command(build_cli.build)
cli.add_command(measure_cli.measure)
cli.add_command(stream_cli.stream)
cli.add_command(serve_cli.serve)
cli.add_command(serve_cli.triton_repo)
cli.add_command(bench_cli.bench)
cli.add_command(demo_cli.demo)


def main() -> None:
    cli(prog_name="usedge")


if __name__ == "__main__":
    main()

"""``usedge build``: a TensorRT engine from a bundle, built on the target machine."""
from __future__ import annotations

import sys

import click

from usedge.errors import UsedgeError


@click.command()
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--target", required=True,
              help="Target profile with TensorRT (desktop-gpu, jetson-orin-nano, jetson-orin-nx, jetson-agx-orin), "
                   "or the path of your own profile .yaml (export/README.md).")
@click.option("--precision", type=click.Choice(["int8", "fp16", "fp32"]), default=None,
              help="Engine precision (default: the target's).")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None, help="Where engines go (default: BUNDLE/engines).")
@click.option("--device", type=click.IntRange(min=0), default=0, show_default=True, help="CUDA device index.")
@click.option("--timing-cache", type=click.Path(dir_okay=False), default=None,
              help="Timing cache file (default: per GPU + TensorRT version under ~/.cache/usedge/tensorrt/).")
@click.option("--force", is_flag=True, help="Rebuild even when an engine with the same key exists.")
@click.option("--dry-run", is_flag=True, help="Print the build plan (profile, precision, flags, DLA) without TensorRT.")
@click.option("--trt-version", default=None, metavar="X.Y.Z",
              help="With --dry-run: plan for this TensorRT (default: the installed one, else 10.3.0, JetPack 6's); "
                   "10.x and 11.x plan differently (docs/tensorrt.md).")
@click.option("--quiet", is_flag=True, help="Do not print the builder's phases.")
def build(bundle, target, precision, out_dir, device, timing_cache, force, dry_run, trt_version, quiet) -> None:
    """Build the TensorRT engine of BUNDLE for this GPU (engines/<key>.engine + <key>.json)."""
    try:
        _run(bundle, target, precision, out_dir, device, timing_cache, force, dry_run, trt_version, quiet)
    except UsedgeError as exc:  # same as the usedge group: one message, no traceback
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)


def _run(bundle, target, precision, out_dir, device, timing_cache, force, dry_run, trt_version, quiet) -> None:
    from usedge.errors import ConfigError
    from usedge.targets import load_target

    tgt = load_target(target)
    if trt_version and not dry_run:
        raise ConfigError("--trt-version only plans (--dry-run); a build uses the installed TensorRT.",
                          fix="add --dry-run, or drop --trt-version.")
    if dry_run:
        from usedge.bundle import load_bundle
        from usedge.engine.plan import PLAN_DEFAULT_TRT, plan_build, trt_support

        version = trt_version or _installed_trt() or PLAN_DEFAULT_TRT
        support = trt_support(version, jetson=tgt.name.startswith("jetson"))
        for line in plan_build(load_bundle(bundle), tgt, precision, support).describe():
            click.echo(line)
        return
    from usedge.engine.build import build_engine

    result = build_engine(bundle, tgt, precision, out_dir=out_dir, progress=not quiet, force=force, device=device,
                          timing_cache=timing_cache, echo=click.echo)
    click.echo(f"{'reused' if result.reused else 'built'}: {result.engine}")


def _installed_trt() -> str | None:
    import importlib.metadata

    for dist in ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt_cu12", "tensorrt_cu13"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None

"""``usedge bench``: one table of latency, size, memory and accuracy per backend × precision × batch; on request
the Predictor's pre / infer / post profile, scaling curves (size, batch, tasks) and live streaming rows."""
from __future__ import annotations

import shlex
from pathlib import Path

import click

from usedge.errors import ConfigError

DEFAULT_BUNDLE = Path("out/bundle")
#: options always written into the recorded command line (the others only when not at their default)
ALWAYS = ("bundle", "backends", "precisions", "batch", "runs", "warmup", "out")


def _default_bundle() -> Path:
    if (DEFAULT_BUNDLE / "metadata.json").is_file():
        return DEFAULT_BUNDLE
    raise ConfigError(f"no bundle given and none at {DEFAULT_BUNDLE}/.",
                      fix="run `usedge export` first, or pass --bundle PATH.")


def _command(ctx: click.Context, bundle: Path) -> str:
    """The command line that reproduces this run (recorded in every report)."""
    args = ["usedge", "bench"]
    for param in ctx.command.params:
        value = bundle if param.name == "bundle" else ctx.params[param.name]
        if value is None or value is False or value == () or (param.name not in ALWAYS and value == param.default):
            continue
        if isinstance(value, tuple):                 # a repeatable option: once per value
            args += [a for v in value for a in (param.opts[0], str(v))]
            continue
        args += [param.opts[0]] if value is True else [param.opts[0], str(value)]
    return shlex.join(args)


@click.command()
@click.option("--bundle", type=click.Path(exists=True), default=None,
              help="Bundle folder or .zip (default: out/bundle).")
@click.option("--backends", default="all", show_default=True,
              help="all, or a comma list of openvino, onnxruntime, tensorrt, torch.")
@click.option("--precisions", default="all", show_default=True,
              help="all (each backend's own: fp32,int8 on OpenVINO / ONNX Runtime; fp32,fp16,int8 on TensorRT; "
                   "fp32 on CPU and fp16 on CUDA for torch), or a comma list given to every backend.")
@click.option("--batch", default="1", show_default=True, help="Batch sizes, comma list (e.g. 1,4).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Pin backend threads (default: theirs).")
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True, help="Timed calls per row.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True, help="Untimed calls first.")
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="Labelled folder: its val/ split scores each backend × precision.")
@click.option("--max-eval-per-task", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--teacher/--no-teacher", default=False, show_default=True,
              help="Also time the teachers at their own input sizes (B4 as shipped: one torch forward per task, and "
                   "in one pass; the ViT in one pass), and print the ratios (needs the train extra).")
@click.option("--teacher-runs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--teacher-checkpoint", "teacher_checkpoints", multiple=True, type=click.Path(exists=True),
              help="A trained teacher checkpoint (its config names the preset: baseline-b4, teacher-vit-s); its rows "
                   "time these weights instead of random ones. Repeatable.")
@click.option("--profile/--no-profile", default=False, show_default=True,
              help="Split the Predictor's time into preprocess / infer / postprocess per backend × precision "
                   "(batch 1; a model-sized frame and a 640×480 grab): profile.md / .json.")
@click.option("--scaling/--no-scaling", default=False, show_default=True,
              help="Latency vs input size, batch and tasks decoded on the CPU backends (fp32, re-exported from the "
                   "bundle's torch/ weights; needs the train extra): scaling.md / .csv / .json / .png.")
@click.option("--scaling-sizes", default="128,256,384,512", show_default=True, help="Input sizes (batch 1).")
@click.option("--scaling-batches", default="1,2,4,8,16", show_default=True, help="Batches (at --scaling-size).")
@click.option("--scaling-tasks", default="1,3,9,27", show_default=True,
              help="Tasks decoded per frame (at --scaling-size, batch 1).")
@click.option("--scaling-size", type=click.IntRange(min=32), default=None,
              help="Input size of the batch and task curves (default: the bundle's).")
@click.option("--scaling-model", default=None,
              help="A preset (e.g. student-s) with random weights instead of the bundle's torch/ weights.")
@click.option("--scaling-rounds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Spread each point's --runs over this many interleaved rounds.")
@click.option("--stream/--no-stream", default=False, show_default=True,
              help="Live streaming rows: echo cine and phantom cine × --stream-fps through usedge.load's choice "
                   "(latest frame wins): stream.md / .json.")
@click.option("--stream-fps", default="30,60", show_default=True, help="Frame rates of the stream rows.")
@click.option("--stream-seconds", type=click.FloatRange(min=0.5), default=4.0, show_default=True,
              help="Length of each stream row; its first second (a quarter of shorter rows) is warm-up.")
@click.option("--out", type=click.Path(file_okay=False), default="runs/bench", show_default=True)
@click.pass_context
def bench(ctx, bundle, backends, precisions, batch, threads, runs, warmup, data, max_eval_per_task, teacher,
          teacher_runs, teacher_checkpoints, profile, scaling, scaling_sizes, scaling_batches, scaling_tasks, scaling_size,
          scaling_model, scaling_rounds, stream, stream_fps, stream_seconds, out) -> None:
    """Benchmark a bundle on every backend × precision × batch (rows that cannot run say why)."""
    from usedge.bench import run_bench, to_markdown, write_reports

    bundle = Path(bundle) if bundle else _default_bundle()
    command, out = _command(ctx, bundle), Path(out)
    result = run_bench(bundle, backends=backends, precisions=precisions, batches=batch, threads=threads,
                       runs=runs, warmup=warmup, data=data, max_eval_per_task=max_eval_per_task, command=command)
    paths = write_reports(result, out)
    click.echo(to_markdown(result))
    if teacher:
        paths["teacher"] = _teacher(result, threads, teacher_runs, out, teacher_checkpoints)
    if profile:
        paths.update(_profile(bundle, backends, precisions, threads, runs, warmup, command, out))
    if scaling:
        paths.update(_scaling(bundle, backends, scaling_sizes, scaling_batches, scaling_tasks, scaling_size,
                              scaling_model, scaling_rounds, threads, runs, warmup, command, out))
    if stream:
        paths.update(_stream(bundle, stream_fps, stream_seconds, threads, command, out))
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))


def _teacher(result, threads, runs: int, out: Path, checkpoints: tuple[str, ...] = ()) -> Path:
    """Time the teachers and the student's fastest batch-1 row (and its fp32 row on the teachers' runtime) again,
    one fresh process per row; print and write teacher.md next to the bench report."""
    from usedge._io import atomic_write_text
    from usedge.bench.teacher import bench_student, bench_teacher, side_by_side
    from usedge.bundle import load_bundle
    from usedge.models.checkpoint import read_config

    size = load_bundle(result.bundle, verify=False).preprocess.size
    ok = [r for r in result.rows if r.status == "ok" and r.batch == 1 and r.p50_ms]
    best = min(ok, key=lambda r: r.p50_ms) if ok else None
    student = bench_student(result.bundle, best.backend, best.precision, threads=threads) if best else None
    fp32 = [r for r in ok if r.backend == "openvino" and r.precision == "fp32"]
    same = bench_student(result.bundle, "openvino", "fp32", threads=threads) if fp32 else None
    trained = {read_config(c)[0].name: str(c) for c in checkpoints}
    text = side_by_side(bench_teacher(None, runs=runs, threads=threads, checkpoints=trained), result.rows, size,
                        student, same)
    click.echo(text)
    atomic_write_text(out / "teacher.md", text)
    return out / "teacher.md"


def _profile(bundle, backends, precisions, threads, runs, warmup, command, out: Path) -> dict:
    from usedge.bench.profile import profile_markdown, run_profile, write_profile_reports

    result = run_profile(bundle, backends=backends, precisions=precisions, threads=threads, runs=runs,
                         warmup=warmup, command=command)
    click.echo(profile_markdown(result))
    return write_profile_reports(result, out)


def _scaling(bundle, backends, sizes, batches, tasks, size, model, rounds, threads, runs, warmup, command,
             out: Path) -> dict:
    from usedge.bench.scaling import run_scaling, scaling_markdown, write_scaling_reports

    result = run_scaling(bundle, model=model, backends=backends, sizes=sizes, batches=batches, task_counts=tasks,
                         size=size, threads=threads, runs=runs, warmup=warmup, rounds=rounds, command=command)
    click.echo(scaling_markdown(result))
    return write_scaling_reports(result, out)


def _stream(bundle, fps, seconds: float, threads, command, out: Path) -> dict:
    from usedge.bench.streaming import run_stream_bench, stream_markdown, write_stream_reports

    result = run_stream_bench(bundle, fps=fps, seconds=seconds, warmup_s=min(1.0, seconds / 4), threads=threads,
                              command=command)
    click.echo(stream_markdown(result))
    return write_stream_reports(result, out)

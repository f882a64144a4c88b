"""``usedge export``, ``usedge calibrate``, ``usedge verify``."""
from __future__ import annotations

import json

import click


@click.command()
@click.option("--int8/--fp32-only", default=True, show_default=True, help="Also build the gated INT8 model.")
@click.option("--model", type=click.Path(exists=True), default=None,
              help="Checkpoint folder or baseline .pth (default: the student that ships with usedge).")
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="Labelled set: train/ calibrates, val/ gates (default: a phantom set, generated if missing).")
@click.option("--calib", type=click.Path(exists=True), default=None, help="Calibration folder or manifest.json.")
@click.option("--per-task", type=click.IntRange(min=1), default=16, show_default=True, help="Calibration images per task.")
@click.option("--allow-small-calibration", is_flag=True, help="Accept fewer than the minimum per task (recorded).")
@click.option("--target", default="cpu", show_default=True,
              help="Target profile (cpu: 7-bit int8 weights, exact on every x86 CPU; cpu-vnni: 8-bit, VNNI CPUs only; "
                   "desktop-gpu, jetson-orin-nano, jetson-orin-nx, jetson-agx-orin), or the path of your own profile "
                   ".yaml (export/README.md).")
@click.option("--max-drop", type=float, default=1.0, show_default=True,
              help="Gate: max points lost per task when the paired test says the loss is real.")
@click.option("--max-mre-increase", type=float, default=0.05, show_default=True,
              help="Gate: max relative MRE growth when the paired test says it is real.")
@click.option("--hard-drop", type=float, default=3.0, show_default=True,
              help="Gate: max points lost per task, significant or not.")
@click.option("--hard-mre-increase", type=float, default=0.15, show_default=True,
              help="Gate: max relative MRE growth, significant or not.")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Gate: one-sided significance of the paired per-image test.")
@click.option("--max-float", type=click.IntRange(min=0), default=64, show_default=True,
              help="Gate fallback: most activation quantizers the sensitivity search may keep in float (0: none).")
@click.option("--qat", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Quantization-aware fine-tuning: auto = when post-training quantization fails the gate.")
@click.option("--qat-steps", type=click.IntRange(min=1), default=600, show_default=True,
              help="QAT fine-tuning steps (batch 32, ~1 s each on 2 CPU cores at 128²).")
@click.option("--range-estimator", type=click.Choice(["default", "minmax", "mean_minmax", "median_minmax",
                                                     "mean_quantile"]), default="default", show_default=True,
              help="PTQ activation range estimation (NNCF); docs/export.md has the measured comparison.")
@click.option("--gate-frr", type=click.FloatRange(0.001, 0.2), default=0.01, show_default=True,
              help="Frame gate: the in-distribution false-rejection rate its thresholds are fitted at (held-out images).")
@click.option("--no-frame-gate", is_flag=True, help="Fit no frame gate (usedge.load then runs the quality checks only).")
@click.option("--zip", "make_zip", is_flag=True, help="Also write OUT.zip.")
@click.option("--out", type=click.Path(file_okay=False), default="out/bundle", show_default=True)
@click.option("--triton", "triton_repo", type=click.Path(file_okay=False), default=None,
              help="Also write the bundle as a Triton model repository here (as `usedge triton-repo`: a repository "
                   "usedge wrote earlier is replaced, any other non-empty folder refused; docs/triton.md).")
def export(int8, model, data, calib, per_task, allow_small_calibration, target, max_drop, max_mre_increase, hard_drop,
           hard_mre_increase, alpha, max_float, qat, qat_steps, range_estimator, gate_frr, no_frame_gate, make_zip, out,
           triton_repo) -> None:
    """Export a model to a verified, self-describing bundle (fp32 + gated INT8 ONNX)."""
    from usedge._io import check_outputs, check_writable
    from usedge.export.pipeline import ExportConfig, run_export
    from usedge.quantize.gate import GateConfig

    check_outputs({"--out": out, "--triton": triton_repo}, {"--model": model, "--data": data, "--calib": calib})
    for option, path in (("--out", out), ("--triton", triton_repo)):
        if path:
            check_writable(option, path)
    cfg = ExportConfig(model=model, data=data, out=out, int8=int8, calib=calib, per_task=per_task,
                       allow_small_calibration=allow_small_calibration, target=target, make_zip=make_zip,
                       max_float=max_float, qat=qat, qat_steps=qat_steps, range_estimator=range_estimator,
                       gate_frr=None if no_frame_gate else gate_frr,
                       gate=GateConfig(max_drop, max_mre_increase, hard_drop, hard_mre_increase, alpha))
    try:
        run_export(cfg)
    finally:
        from pathlib import Path

        report = Path(out) / "report.md"
        if report.is_file():
            click.echo(report.read_text())
    if triton_repo:
        from usedge.cli.serve import triton_repo as write_repo

        click.get_current_context().invoke(write_repo, repo=triton_repo, bundle=out, target=target, overwrite=True)


@click.command("gate-fit")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="Labelled FMC-UIA layout: train split for the statistics, val for the thresholds "
                   "(default: the phantom the export uses).")
@click.option("--frr", type=click.FloatRange(0.001, 0.2), default=0.01, show_default=True,
              help="In-distribution false-rejection rate the thresholds are fitted at.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Write here (default: in place).")
@click.option("--framing-only", is_flag=True,
              help="Refit only the framing (the training images' shape a scan-region crop is padded to); the graphs "
                   "and the gate stay as they are.")
def gate_fit(bundle, data, frr, out, framing_only) -> None:
    """Add (or refit) a bundle's frame gate (the embedding output, the statistics, the thresholds) and framing."""
    from usedge.export.frame_gate import refit_bundle

    path = refit_bundle(bundle, data, out, frr, log=lambda m: click.echo(m, err=True), gate=not framing_only)
    click.echo(f"{'framing' if framing_only else 'frame gate'} fitted: {path}")


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--model", type=click.Path(exists=True), default=None,
              help="Checkpoint whose preprocessing to use (default: the built-in student).")
@click.option("--per-task", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--unlabelled", multiple=True, help="Extra unlabelled image / video / DICOM sources.")
@click.option("--allow-small", is_flag=True, help="Accept fewer than the minimum images per task (recorded).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="calibration", show_default=True)
def calibrate(data, model, per_task, unlabelled, allow_small, seed, out) -> None:
    """Build a task-balanced INT8 calibration set (tensors + manifest with sha256)."""
    from usedge.assets import default_checkpoint
    from usedge.data.preprocess import PreprocessSpec
    from usedge.models.checkpoint import read_config
    from usedge.quantize.calibration import build_calibration

    config, _ = read_config(model or default_checkpoint())
    calib = build_calibration(data, PreprocessSpec.from_config(config), list(config.tasks), out=out, per_task=per_task,
                              unlabelled=unlabelled, seed=seed, allow_small=allow_small)
    click.echo(f"{len(calib)} images ({len(calib.manifest['per_task'])} tasks) -> {out}/ ; manifest sha256 {calib.sha256[:16]}")


@click.command()
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="A labelled set: also run the paired fp32-vs-int8 gate on its held-out split, on this machine.")
@click.option("--no-emulate", is_flag=True, help="On a VNNI CPU, skip the int8 check of OpenVINO without VNNI.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def verify(bundle, data, no_emulate, as_json) -> None:
    """Check a bundle: metadata and checksums, onnx.checker, one frame through the Predictor, the int8 check on
    this machine (also for slim bundles), per-task parity on every backend installed here, and with --data the
    paired INT8 gate run here."""
    from usedge.backends.parity import passes
    from usedge.export.report import agreement_summary
    from usedge.runtime.verify import verify_bundle

    result = verify_bundle(bundle, data=data, emulate=not no_emulate)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"checksums: ok; checker: {result['checker']}")
        if "placement" in result:
            click.echo(f"int8 Q/DQ {result['placement']['summary']}")
        for p, by in result["frame"].items():
            for b, r in by.items():
                click.echo(f"one frame, {p} on {b}: " + (f"ok ({r['tasks']} tasks, {r['ms']} ms)" if r["ok"]
                                                          else f"FAIL {r['error']}"))
        if "int8_check" in result:
            _echo_int8_check(result["int8_check"])
        if "gate" in result:
            g = result["gate"]
            click.echo(f"int8 gate here ({g['backend']}, {g['data']}/{g['split']}): "
                       + ("pass" if g["passed"] else f"FAIL {g['failing']}"))
        if "parity_skipped" in result:
            click.echo(f"parity: skipped ({result['parity_skipped']})")
        for p, by in result["parity"].items():
            for b, r in by.items():
                if r["passed"] is None:
                    click.echo(f"{p} on {b}: {agreement_summary(r['tasks'])} (informational; the accuracy gate in "
                               "report.md is the int8 criterion)")
                    continue
                worst = {t: {k: round(v, 4) for k, v in row.items() if not k.startswith("maxabs")}
                         for t, row in r["tasks"].items() if not passes(row, p)}
                click.echo(f"{p} on {b}: {'pass' if r['passed'] else 'FAIL ' + json.dumps(worst)}")
    if not result["passed"]:
        raise SystemExit(1)


def _echo_int8_check(check: dict) -> None:
    rows = [(f"on {b}", r) for b, r in check["backends"].items()]
    if "emulated_avx2" in check:
        rows.append((f"on openvino without VNNI (emulated, ONEDNN_MAX_CPU_ISA=AVX2; {check['weight_bits']}-bit weights"
                     + ("" if check["weight_bits"] == 7 else ", informational") + ")", check["emulated_avx2"]))
    for where, r in rows:
        if r["passed"] is None:
            click.echo(f"int8 check {where}: not run ({r.get('reason')})")
            continue
        label = r.get("machine", {}).get("label", "")
        click.echo(f"int8 check {where}" + (f" [{label}]" if label and "emulated" not in where else "") + ": "
                   + ("exact within tolerance" if r["passed"] else
                      "WRONG on " + ", ".join(f"{t} ({r['tasks'][t]['metric']} {r['tasks'][t]['value']})"
                                              for t in r["failing"])))

"""The per-task accuracy gate: INT8 must keep the float model's score on every task — judged on signal, not noise.

Both models are scored on the same held-out images, so the comparison is paired: per image, the headline
metric of fp32 minus that of int8 (classification: right/wrong; segmentation: Dice; detection: IoU;
landmarks: radial error). A task fails when

- its loss is beyond the tolerance (default 1 point of Dice / accuracy / IoU × 100, or +5 % MRE) AND the
  paired sign-flip test says int8 is worse with p < ``alpha`` (default 0.05, one-sided) — a loss that one or
  two flipped images explain is noise at 100 images per task; or
- its loss is beyond the hard limit (default 3 points / +15 % MRE), significant or not.

Each row carries the loss's 95 % bootstrap interval and p-value; :func:`resolution` states what the gate can
see at its sample size. For classification the sign-flip test on the discordant images is McNemar's exact
test (computed exactly up to 20 discordant images, by 20 000 random sign flips beyond).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from usedge.metrics.evaluator import PRIMARY_METRIC
from usedge.tasks import get_task

EPS = 1e-9          # float slack: 100 * (0.95 - 0.94) is 1.0000000000000009, which is one point, not more


@dataclass(frozen=True)
class GateConfig:
    max_drop_points: float = 1.0       # Dice / accuracy / IoU, in points (× 100), when the loss is significant
    max_mre_increase: float = 0.05     # relative, when significant
    hard_drop_points: float = 3.0      # fails regardless of significance
    hard_mre_increase: float = 0.15
    alpha: float = 0.05                # one-sided significance of the paired test
    seed: int = 0                      # bootstrap / sign-flip draws


@dataclass(frozen=True)
class GateRow:
    task: str
    metric: str
    fp32: float
    int8: float
    change: str          # "-0.42 pt" or "+1.3 %"
    passed: bool
    n: int = 0
    p_value: float = math.nan          # one-sided: int8 worse than fp32
    ci_low: float = math.nan           # 95 % bootstrap interval of the loss, in the change's unit
    ci_high: float = math.nan


def paired_loss(fp32: np.ndarray, int8: np.ndarray, higher_is_better: bool, seed: int = 0,
                draws: int = 20000) -> tuple[float, float, float, float]:
    """Per-image loss d = fp32 - int8 (or int8 - fp32 when lower is better): returns (mean d, p, ci_low,
    ci_high) with p the one-sided sign-flip p-value of "mean d > 0" and the 95 % bootstrap interval."""
    a, b = np.asarray(fp32, np.float64), np.asarray(int8, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    d = (a - b if higher_is_better else b - a)[keep]
    if d.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(d.mean())
    rng = np.random.default_rng(seed)
    nz = d[d != 0]
    if nz.size == 0:
        p = 1.0
    elif nz.size <= 20:  # exact: every sign pattern of the nonzero differences
        signs = ((np.arange(2 ** nz.size)[:, None] >> np.arange(nz.size)) & 1) * 2 - 1
        p = float(np.mean((signs * np.abs(nz)).sum(axis=1) >= nz.sum() - 1e-12))
    else:
        flips = rng.choice([-1.0, 1.0], size=(draws, nz.size))
        p = float((1 + np.sum((flips * np.abs(nz)).sum(axis=1) >= nz.sum() - 1e-12)) / (draws + 1))
    boot = d[rng.integers(0, d.size, size=(2000, d.size))].mean(axis=1)
    return mean, p, float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def judge(task: str, fp32: dict, int8: dict, gate: GateConfig, fp32_samples: np.ndarray | None = None,
          int8_samples: np.ndarray | None = None) -> GateRow:
    metric = PRIMARY_METRIC[get_task(task).kind]
    a, b = float(fp32.get(metric, math.nan)), float(int8.get(metric, math.nan))
    n = int(fp32.get("n", 0) or 0)
    if not (math.isfinite(a) and math.isfinite(b)):
        return GateRow(task, metric, a, b, "n/a", False, n)
    paired = fp32_samples is not None and int8_samples is not None and len(fp32_samples) == len(int8_samples) > 0
    if paired:
        _, p, lo, hi = paired_loss(fp32_samples, int8_samples, metric != "mre", gate.seed)
    else:
        p, lo, hi = 0.0, math.nan, math.nan   # no per-image scores: every loss counts as significant
    significant = p < gate.alpha
    if metric == "mre":
        rel = (b - a) / a if a > 0 else (0.0 if b == 0 else math.inf)
        passed = rel <= gate.hard_mre_increase + EPS and (rel <= gate.max_mre_increase + EPS or not significant)
        scale = 100 / a if a > 0 else math.nan
        return GateRow(task, metric, a, b, f"{100 * rel:+.1f} %", passed, n, p, lo * scale, hi * scale)
    drop = 100 * (a - b)
    passed = drop <= gate.hard_drop_points + EPS and (drop <= gate.max_drop_points + EPS or not significant)
    return GateRow(task, metric, a, b, f"{-drop:+.2f} pt", passed, n, p, 100 * lo, 100 * hi)


def apply_gate(fp32: dict[str, dict], int8: dict[str, dict], gate: GateConfig = GateConfig(),
               fp32_samples: dict[str, np.ndarray] | None = None,
               int8_samples: dict[str, np.ndarray] | None = None) -> list[GateRow]:
    """One row per task present in the float results (paired when per-image scores are given)."""
    fs, qs = fp32_samples or {}, int8_samples or {}
    return [judge(t, fp32[t], int8.get(t, {}), gate, fs.get(t), qs.get(t)) for t in fp32]


def failing(rows: list[GateRow]) -> list[str]:
    return [r.task for r in rows if not r.passed]


def resolution(n: int, gate: GateConfig) -> str:
    """What the gate can see with ``n`` images per task, in words."""
    if n <= 0:
        return "no held-out images"
    flips = next((k for k in range(1, n + 1) if 0.5 ** k < gate.alpha), n)
    return (f"{n} images per task: one classification image is {100 / n:.1f} points; a clean classification "
            f"loss (images only lost, none gained) is significant from {flips} images ({100 * flips / n:.0f} "
            f"points); any loss beyond {gate.hard_drop_points:g} points fails regardless")


def to_markdown(rows: list[GateRow], gate: GateConfig) -> str:
    lines = [f"Gate: a task fails when it loses more than {gate.max_drop_points:g} point (Dice/accuracy/IoU × 100) "
             f"or its MRE grows more than {100 * gate.max_mre_increase:g} % AND the paired test says int8 is "
             f"worse (p < {gate.alpha:g}), or when it loses more than {gate.hard_drop_points:g} points / "
             f"{100 * gate.hard_mre_increase:g} % regardless. Loss interval: 95 % paired bootstrap "
             "(points, or % of the fp32 MRE).", "",
             "| task | metric | fp32 | int8 | change | loss 95 % CI | p (int8 worse) | gate |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]" if math.isfinite(r.ci_low) else "n/a"
        p = f"{r.p_value:.3f}" if math.isfinite(r.p_value) else "n/a"
        lines.append(f"| {r.task} | {r.metric} | {r.fp32:.4f} | {r.int8:.4f} | {r.change} | {ci} | {p} | "
                     f"{'pass' if r.passed else 'FAIL'} |")
    return "\n".join(lines) + "\n"

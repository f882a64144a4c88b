"""Selective prediction: how good the answers are on the frames a confidence score accepts, as more or fewer are
accepted (the risk-coverage curve, Geifman & El-Yaniv 2017). Here the score is the frame gate's distance: frames
are accepted nearest first; at coverage c the metric is the mean per-image headline metric (Dice, accuracy,
IoU, MRE) of the accepted c. A useful gate makes the curve better at lower coverage; its area (the mean over
coverages) summarises it."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from usedge.tasks import TaskKind, get_task

#: the per-image headline metric of each kind and whether higher is better
HEADLINE = {TaskKind.SEGMENTATION: ("dice", True), TaskKind.CLASSIFICATION: ("accuracy", True),
            TaskKind.DETECTION: ("iou", True), TaskKind.REGRESSION: ("mre", False)}


def coverage_curve(values: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, mean of ``values`` over the accepted) accepting by ascending ``scores`` (NaN values left out)."""
    keep = np.isfinite(values) & np.isfinite(scores)
    v = values[keep][np.argsort(scores[keep], kind="mergesort")]
    n = np.arange(1, len(v) + 1)
    return n / max(len(v), 1), np.cumsum(v) / n


def selective_report(per_sample: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray],
                     accepted: Mapping[str, np.ndarray]) -> dict:
    """Per family (tasks pooled): the metric at full coverage, on the gate's accepted frames, at 90 / 80 / 50 %
    coverage, and the area under the curve; ``curves`` for the plot."""
    out: dict = {"families": {}, "curves": {}}
    for kind, (metric, higher) in HEADLINE.items():
        tasks = [t for t in per_sample if get_task(t).kind is kind and len(per_sample[t])]
        if not tasks:
            continue
        v = np.concatenate([np.asarray(per_sample[t], np.float64) for t in tasks])
        s = np.concatenate([np.asarray(scores[t], np.float64) for t in tasks])
        a = np.concatenate([np.asarray(accepted[t], bool) for t in tasks])
        cov, curve = coverage_curve(v, s)
        if not len(cov):
            continue
        at = {f"at_{int(c * 100)}": float(curve[max(int(np.ceil(c * len(cov))) - 1, 0)]) for c in (0.9, 0.8, 0.5)}
        ok = np.isfinite(v)
        out["families"][kind.value] = {"metric": metric, "higher_is_better": higher, "images": int(ok.sum()),
                                       "all": float(curve[-1]), "accepted": float(np.mean(v[ok & a])) if (ok & a).any()
                                       else float("nan"), "accepted_fraction": float(np.mean(a[ok])), **at,
                                       "area": float(np.mean(curve))}
        out["curves"][kind.value] = (cov, curve)
    return out


def selective_png(report: dict, path) -> None:
    """The risk-coverage curves of :func:`selective_report`, one panel per family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fams = list(report["curves"])
    fig, axes = plt.subplots(1, len(fams), figsize=(3.2 * len(fams), 3), dpi=110, squeeze=False)
    for ax, fam in zip(axes[0], fams):
        cov, curve = report["curves"][fam]
        row = report["families"][fam]
        ax.plot(cov * 100, curve)
        ax.axvline(row["accepted_fraction"] * 100, color="k", ls="--", lw=0.8, label="gate accepts")
        ax.set_title(f"{fam} (area {row['area']:.3f})", fontsize=9)
        ax.set_xlabel("coverage: frames accepted, nearest first (%)", fontsize=7)
        ax.set_ylabel(f"{row['metric']} of the accepted", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["HEADLINE", "coverage_curve", "selective_png", "selective_report"]

"""The frame gate: does this frame deserve an answer? No torch.

Two kinds of check on every frame, both on the model's own input (the scan-region crop resized to the input size):

- **image quality** (no statistics needed): a blank or uniform frame, a saturated one, too little speckle (probe
  in air, a black screen, a menu), a colour overlay (colour Doppler, a coloured UI) over the image; and, on a
  stream, a frozen screen (:class:`FrozenCheck`);
- **out of distribution**: how unlike the training data the network's own features are. The graph output
  ``frame.embedding`` (:data:`usedge.tasks.EMBEDDING_OUTPUT`) holds, for every feature map the network has (the
  backbone stages its neck reads, the dense map, the stride-32 map), the channel means and standard deviations
  over the image; per map, one minus the cosine similarity to the k-th nearest of the in-distribution embeddings
  the export stored in the bundle (``frame_gate.npz``; Sun et al. 2022, "Out-of-distribution detection with
  deep nearest neighbors"), over that map's in-distribution 99th percentile, summed. Shallow maps' statistics
  catch photographs and noise, deep ones other anatomy and scanners; the pooled stride-32 feature alone
  separates far less (docs/gate.md has the comparison). Non-parametric, so 27 tasks' 11 organs need no mixture.

The thresholds were fitted at export on held-out in-distribution images at a stated false-rejection rate
(``metadata.json`` ``frame_gate``) and can be overridden (:meth:`FrameGate.with_thresholds`). A bundle without the
statistics still loads: its gate runs the quality checks and says the distance check is unavailable, and why.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from usedge.bundle.frame_gate import GateThresholds, knn_distance, quality_reasons, unpack_bank
from usedge.data.quality import quality_scores


@dataclass(frozen=True)
class GateVerdict:
    """The gate's answer for one frame: ``accepted``, and when not, ``reasons`` (human-readable, first the most
    telling); ``scores`` are the measured values, ``thresholds`` what they were compared with; ``ood_available``
    False (with ``note``) when the bundle had no statistics for the distance check."""

    accepted: bool
    reasons: tuple[str, ...]
    scores: Mapping[str, float]
    thresholds: GateThresholds
    ood_available: bool = True
    note: str = ""

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def rejected_by(self, reason: str, score: str, value: float) -> GateVerdict:
        """This verdict with one more rejection (a stream's frozen-screen check)."""
        return dataclasses.replace(self, accepted=False, reasons=(*self.reasons, reason),
                                   scores={**self.scores, score: value})

    def to_json(self) -> dict[str, Any]:
        t = dataclasses.asdict(self.thresholds)
        out = {"accepted": self.accepted, "reasons": list(self.reasons),
               "scores": {k: round(float(v), 4) for k, v in self.scores.items()},
               "thresholds": {k: (None if v is None else round(float(v), 4)) for k, v in t.items()},
               "ood_available": self.ood_available}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class FrameGate:
    """Scores and judges frames. ``bank``: the in-distribution embeddings for the precision that runs (unit rows;
    None: no distance check, ``note`` says why)."""

    thresholds: GateThresholds = field(default_factory=GateThresholds)
    bank: np.ndarray | None = None
    k: int = 1
    note: str = ""
    #: (start, stop) columns of each feature map in the embedding, and each map's distance scale
    segments: tuple[tuple[int, int], ...] = ()
    scales: tuple[float, ...] = ()

    @classmethod
    def from_bundle(cls, bundle, precision: str) -> FrameGate:
        """The gate a bundle's export fitted for ``precision`` (fp32's serves fp16); the quality checks alone,
        with the reason, when the bundle has none."""
        from usedge.bundle import FRAME_GATE_FILE

        rec = bundle.metadata.get("frame_gate")
        quality = GateThresholds(**(rec.get("quality") or {})) if isinstance(rec, dict) else GateThresholds()
        if isinstance(rec, dict) and rec.get("unavailable"):
            return cls(quality, note=f"no distance check: {rec['unavailable']} (the image-quality checks run)")
        if not isinstance(rec, dict) or FRAME_GATE_FILE not in bundle.meta.files:
            return cls(quality, note="this bundle has no frame-gate statistics (exported before usedge had the "
                                     "gate): only the image-quality checks run; re-export it, or run "
                                     "`usedge gate-fit BUNDLE`")
        row = rec.get("ood", {}).get(precision) or rec.get("ood", {}).get("fp32")
        if row is None:
            return cls(quality, note=f"the frame gate has no statistics for {precision}")
        segments = tuple((int(a), int(b)) for a, b in rec["segments"])
        with np.load(bundle.path / FRAME_GATE_FILE) as z:
            bank = unpack_bank(z, segments)
        return cls(dataclasses.replace(quality, ood=float(row["threshold"])), bank, int(rec.get("k", 1)),
                   segments=segments, scales=tuple(float(v) for v in row["scales"]))

    def with_thresholds(self, **overrides: float) -> FrameGate:
        """The same gate with some thresholds replaced (``ood=``, ``min_texture=``, ...)."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(GateThresholds)}
        if unknown:
            from usedge.errors import ConfigError

            raise ConfigError(f"unknown gate threshold(s) {sorted(unknown)}.",
                              fix=f"use some of: {', '.join(f.name for f in dataclasses.fields(GateThresholds))}")
        return dataclasses.replace(self, thresholds=dataclasses.replace(self.thresholds, **overrides))

    @property
    def ood_available(self) -> bool:
        return self.bank is not None and self.thresholds.ood is not None

    def distance(self, embeddings: np.ndarray) -> np.ndarray:
        return knn_distance(self.bank, embeddings, self.k, self.segments, self.scales)

    def judge(self, small: np.ndarray, embedding: np.ndarray | None = None,
              distance: float | None = None) -> GateVerdict:
        """The verdict on one frame: ``small`` its model-input-sized uint8 image, ``embedding`` its pooled feature
        (or ``distance``, already computed for a batch)."""
        t = self.thresholds
        scores = quality_scores(small)
        reasons = []
        if self.ood_available and (embedding is not None or distance is not None):
            d = float(distance if distance is not None else self.distance(embedding[None])[0])
            scores["ood"] = d
            if d > t.ood:
                reasons.append(f"not like the training data (score {d:.3f} > {t.ood:.3f})")
        reasons += quality_reasons(scores, t)
        note = self.note if not self.ood_available else ""
        return GateVerdict(not reasons, tuple(reasons), scores, t, self.ood_available, note)


__all__ = ["FrameGate", "GateVerdict"]

"""The frame gate's part of the bundle format: its thresholds (``metadata.json`` ``frame_gate``), its statistics
(``frame_gate.npz``: the in-distribution embeddings, each feature map's segment unit length, as int8 with a scale
per segment) and the distance they define. Written by usedge.export.frame_gate, read by usedge.runtime.gate."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GateThresholds:
    """When a frame is rejected. ``ood``: largest accepted k-NN distance (None: no distance check); the quality
    limits are fractions of the model-input pixels (or grey levels for ``min_std``)."""

    ood: float | None = None
    min_std: float = 2.0           # below: blank or uniform frame
    max_saturated: float = 0.30    # above: saturated (grey level >= 250)
    min_texture: float = 0.05      # below: no speckle (probe in air, black or flat screen)
    max_colour: float = 0.05       # above: a colour overlay (colour Doppler box, coloured UI) over the image
    frozen_frames: int = 5         # a stream's frame identical to the previous this many times in a row: frozen


def quality_reasons(scores: Mapping[str, float], t: GateThresholds) -> list[str]:
    """Why the quality figures reject the frame (empty: they do not)."""
    out = []
    if scores["std"] < t.min_std:
        out.append(f"blank or uniform frame (grey-level SD {scores['std']:.1f} < {t.min_std:g})")
    if scores["saturated"] > t.max_saturated:
        out.append(f"saturated ({scores['saturated']:.0%} of pixels at full brightness > {t.max_saturated:.0%})")
    if scores["texture"] < t.min_texture:
        out.append(f"no speckle: probe in air or not an image ({scores['texture']:.1%} textured < "
                   f"{t.min_texture:.1%})")
    if scores["colour"] > t.max_colour:
        out.append(f"colour overlay (colour Doppler?) over {scores['colour']:.0%} of the image > {t.max_colour:.0%}")
    return out


def pack_bank(bank: np.ndarray, segments: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
    """``frame_gate.npz``'s arrays for a bank (:func:`unit_segments` rows): int8 with one scale per segment (a
    unit vector's parts are within ±1; int8 keeps cosine similarities within ~1e-3 at a quarter of float32)."""
    scale = np.array([max(float(np.abs(bank[:, a:b]).max()), 1e-12) / 127 for a, b in segments], np.float32)
    q = np.empty(bank.shape, np.int8)
    for (a, b), s in zip(segments, scale):
        q[:, a:b] = np.clip(np.rint(bank[:, a:b] / s), -127, 127)
    return {"bank_int8": q, "bank_scale": scale}


def unpack_bank(z, segments: Sequence[tuple[int, int]]) -> np.ndarray:
    """The float32 bank of a loaded ``frame_gate.npz``, rows unit length per segment again."""
    bank = z["bank_int8"].astype(np.float32)
    for (a, b), s in zip(segments, z["bank_scale"]):
        bank[:, a:b] *= s
    return unit_segments(bank, segments)


def unit_segments(x: np.ndarray, segments: Sequence[tuple[int, int]]) -> np.ndarray:
    """``x`` (N×D) with each segment's part of every row scaled to unit length (float32)."""
    out = np.array(x, dtype=np.float32).reshape(len(x), -1)
    for a, b in segments:
        part = out[:, a:b]
        part /= np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
    return out


def knn_distance(bank: np.ndarray, embeddings: np.ndarray, k: int, segments: Sequence[tuple[int, int]],
                 scales: Sequence[float] | None = None) -> np.ndarray:
    """The frame gate's distance of each row of ``embeddings`` (N×D) to ``bank`` (M×D, :func:`unit_segments`
    applied): per segment (one feature map's channel means and SDs) one minus the cosine similarity to the
    ``k``-th nearest bank row, divided by that segment's ``scales`` entry (its in-distribution 99th percentile,
    so that every map counts alike), summed over segments."""
    q = unit_segments(embeddings, segments)
    k = min(k, bank.shape[0])
    total = np.zeros(len(q), np.float32)
    for i, (a, b) in enumerate(segments):
        sims = q[:, a:b] @ bank[:, a:b].T
        d = 1.0 - np.partition(sims, -k, axis=1)[:, -k]
        total += d / (scales[i] if scales is not None else 1.0)
    return total


__all__ = ["GateThresholds", "knn_distance", "pack_bank", "quality_reasons", "unit_segments", "unpack_bank"]

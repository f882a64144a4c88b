"""Which layers of a built engine run where: the TensorRT engine inspector's JSON read into a report.

A DLA engine silently runs on the GPU whatever the DLA cannot (GPU fallback): a backbone layer that falls back
costs a DLA <-> GPU transfer per frame and the power the DLA was chosen to save. After a build usedge inspects
the engine (``IEngineInspector.get_engine_information``, with ``ProfilingVerbosity.DETAILED``) and reports the
layers on the DLA, the head layers kept on the GPU as planned, and every other GPU layer as a fallback. Pure:
nothing here needs TensorRT (the JSON is TensorRT's, the same in 10.x and 11.x)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from usedge.engine.plan import select_layers

#: engine layer types that move or describe data rather than compute
NO_COMPUTE = frozenset({"Reformat", "Constant", "Shuffle", "NoOp", "Identity", "Slice", "Concatenation"})


@dataclass(frozen=True)
class LayerPlacement:
    """The engine's layers by where they run. ``gpu_planned``: GPU layers the plan put there (the heads beside a
    DLA; every layer of a GPU-only engine); ``fallback``: GPU compute layers the plan meant for the DLA."""

    dla: tuple[str, ...]
    gpu_planned: tuple[str, ...]
    fallback: tuple[str, ...]
    data_movement: tuple[str, ...]

    @property
    def total(self) -> int:
        return len(self.dla) + len(self.gpu_planned) + len(self.fallback) + len(self.data_movement)

    def to_dict(self) -> dict:
        return {"dla_layers": len(self.dla), "gpu_planned_layers": len(self.gpu_planned),
                "data_movement_layers": len(self.data_movement), "fallback": list(self.fallback)}

    def describe(self, on_dla: bool) -> list[str]:
        if not on_dla:
            return [f"layers     {self.total} engine layers, all on the GPU"]
        lines = [f"layers     {len(self.dla)} on the DLA, {len(self.gpu_planned)} head layers on the GPU as planned, "
                 f"{len(self.data_movement)} reformat / data movement, {len(self.fallback)} fell back to the GPU"]
        lines += [f"  fallback {name}" for name in self.fallback[:12]]
        if len(self.fallback) > 12:
            lines.append(f"  ... and {len(self.fallback) - 12} more (all in the sidecar)")
        return lines


def _members(name: str) -> list[str]:
    """The network layers a fused engine layer was made of ("a + b", "PWN(a, b)", "{ForeignNode[a...b]}")."""
    text = name
    for junk in ("{ForeignNode[", "]}", "PWN(", ")"):
        text = text.replace(junk, " ")
    parts = [p.strip() for chunk in text.split(" + ") for p in chunk.replace("...", ",").split(",")]
    return [p for p in parts if p]


def read_placement(information: str | dict, gpu_patterns: Sequence[str]) -> LayerPlacement:
    """Classify the layers of ``IEngineInspector.get_engine_information(LayerInformationFormat.JSON)``.

    A layer of type ``DLA`` runs on the DLA; a GPU layer whose members all match ``gpu_patterns`` (the heads) is
    where the plan put it; data-movement layers (reformats, shuffles, constants) are counted apart; any other GPU layer
    fell back. Layers given as bare names (an engine built without detailed profiling) are all GPU."""
    info = json.loads(information) if isinstance(information, str) else information
    layers = info.get("Layers", []) if isinstance(info, dict) else []
    dla, heads, fallback, moves = [], [], [], []
    for layer in layers:
        name = layer if isinstance(layer, str) else str(layer.get("Name", ""))
        kind = "" if isinstance(layer, str) else str(layer.get("LayerType", ""))
        if kind == "DLA":
            dla.append(name)
        elif kind in NO_COMPUTE or name.startswith("Reformatting CopyNode"):
            moves.append(name)
        elif (members := _members(name)) and len(select_layers(members, gpu_patterns)) == len(members):
            heads.append(name)
        else:
            fallback.append(name)
    return LayerPlacement(tuple(dla), tuple(heads), tuple(fallback), tuple(moves))

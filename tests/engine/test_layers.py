"""usedge.engine.layers: the engine inspector's JSON read into where each layer runs."""
from __future__ import annotations

import json

from usedge.engine.layers import read_placement
from usedge.engine.plan import head_patterns

HEADS = head_patterns([{"id": "FUGC"}, {"id": "fetal_head"}])


def test_dla_heads_fallbacks_and_data_movement_are_told_apart():
    info = json.dumps({"Layers": [
        {"Name": "{ForeignNode[/backbone/stem/Conv.../neck/Add_3]}", "LayerType": "DLA"},
        {"Name": "Reformatting CopyNode for Input Tensor 0 to /FUGC/head/Conv", "LayerType": "Reformat"},
        {"Name": "/FUGC/head/Conv + /FUGC/head/Relu", "LayerType": "CaskConvolution"},
        {"Name": "PWN(/fetal_head/Sigmoid, /fetal_head/Mul)", "LayerType": "PointWiseV2"},
        {"Name": "/neck/Resize_2", "LayerType": "Resize"},                  # a backbone layer the DLA could not run
        {"Name": "/FUGC/head/Conv + /neck/Add_4", "LayerType": "CaskConvolution"},   # fused across: not a head
    ]})
    p = read_placement(info, HEADS)
    assert p.dla == ("{ForeignNode[/backbone/stem/Conv.../neck/Add_3]}",)
    assert p.gpu_planned == ("/FUGC/head/Conv + /FUGC/head/Relu", "PWN(/fetal_head/Sigmoid, /fetal_head/Mul)")
    assert p.fallback == ("/neck/Resize_2", "/FUGC/head/Conv + /neck/Add_4") and len(p.data_movement) == 1
    assert p.to_dict()["fallback"] == list(p.fallback) and p.total == 6
    assert p.describe(True)[0].endswith("2 fell back to the GPU") and len(p.describe(True)) == 3


def test_gpu_only_engines_and_name_only_information():
    everything = (".*",)
    names = {"Layers": ["/backbone/stem/Conv", "/FUGC/head/Conv"]}          # built without detailed profiling
    p = read_placement(names, everything)
    assert p.gpu_planned == ("/backbone/stem/Conv", "/FUGC/head/Conv") and p.fallback == () and p.dla == ()
    assert read_placement(names, HEADS).fallback == ("/backbone/stem/Conv",)
    assert read_placement("{}", HEADS).total == 0
    assert read_placement(names, everything).describe(False) == ["layers     2 engine layers, all on the GPU"]

"""The gate's sensitivity search: Q/DQ pairs found, bypassed cleanly, restricted to the failing heads, ranked."""
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("nncf")

from usedge.backends import open_backend  # noqa: E402
from usedge.bundle.qdq import qdq_report  # noqa: E402
from usedge.models import build_model  # noqa: E402
from usedge.models.onnx import export_onnx  # noqa: E402
from usedge.models.presets import resolve_config  # noqa: E402
from usedge.quantize.int8 import quantize_onnx  # noqa: E402
from usedge.quantize.sensitivity import activation_pairs, bypass, candidates, output_error, probe_backend, rank  # noqa: E402

TASKS = "fetal_head,organ_cls"


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sens")
    config = replace(resolve_config("student-s", TASKS), input_size=64)
    torch.manual_seed(0)
    export_onnx(build_model(config).eval(), config, tmp / "fp32.onnx")
    x = np.random.default_rng(0).standard_normal((12, 3, 64, 64)).astype(np.float32)
    quantize_onnx(tmp / "fp32.onnx", x, tmp / "int8.onnx")
    backend = probe_backend()
    ref = open_backend(backend, tmp / "fp32.onnx").infer(x)
    return tmp, onnx.load(str(tmp / "int8.onnx")), x, ref, backend


def run_on(graphs):
    _, _, x, _, backend = graphs
    return lambda path: open_backend(backend, path).infer(x)


def test_bypass_removes_exactly_the_chosen_pairs_and_moves_outputs_towards_float(graphs):
    tmp, model, x, ref, _ = graphs
    pairs = activation_pairs(model)
    assert len(pairs) > 10 and all(p.dq for p in pairs)
    one = bypass(model, [pairs[3].q])
    onnx.checker.check_model(one, full_check=True)
    assert qdq_report(one).quantizers == qdq_report(model).quantizers - 1
    assert pairs[3].q not in {n.name for n in one.graph.node} and len(activation_pairs(one)) == len(pairs) - 1
    none = bypass(model, [p.q for p in pairs])
    assert activation_pairs(none) == [] and qdq_report(none).quantizers == 0   # weights stay int8 + DQ only
    outputs = list(ref)
    run = run_on(graphs)
    onnx.save(none, str(tmp / "none.onnx"))
    full = output_error(run(tmp / "int8.onnx"), ref, outputs)
    assert full > 0 and output_error(run(tmp / "none.onnx"), ref, outputs) < full


def test_candidates_stay_upstream_of_the_failing_head(graphs):
    _, model, _, ref, _ = graphs
    cls = [p.q for p in candidates(model, ["organ_cls.logits"])]
    seg = [p.q for p in candidates(model, ["fetal_head.logits"])]
    assert cls and seg and not any("/fetal_head/" in q for q in cls) and not any("/organ_cls/" in q for q in seg)
    assert any("/backbone/" in q for q in cls)   # the shared backbone feeds every head
    assert set(cls) | set(seg) == {p.q for p in activation_pairs(model)}


def test_rank_orders_quantizers_by_error_removed(graphs):
    _, model, _, ref, _ = graphs
    ranked = rank(model, ref, ["organ_cls.logits"], run_on(graphs), progress=False)
    gains = [g for _, g in ranked]
    assert gains and all(g > 0 for g in gains) and gains == sorted(gains, reverse=True)


@pytest.mark.parametrize("threshold,limit,expected", [(1, 64, 1), (5, 64, 5), (33, 64, 33), (64, 64, 64),
                                                     (65, 64, None), (40, 50, 40)])
def test_fewest_passing_finds_the_smallest_passing_count(threshold, limit, expected):
    from usedge.quantize.sensitivity import fewest_passing

    calls = []

    def attempt(k):
        calls.append(k)
        return k >= threshold, ("rows", k)

    k, payload = fewest_passing(attempt, limit, budget=20)
    assert k == expected
    if expected is not None:
        assert payload == ("rows", expected)
    assert len(calls) <= 2 * 7 and max(calls) <= limit

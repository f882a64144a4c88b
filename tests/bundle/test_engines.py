"""The engine key and sidecar (usedge.bundle.engines): digests, mismatch messages, sidecars, engine selection.
No TensorRT."""
from __future__ import annotations

import dataclasses
import json

import pytest

from usedge.bundle import engines as BE
from usedge.bundle.engines import MachineInfo
from usedge.engine import plan as P
from usedge.errors import ConfigError, DataError


@pytest.fixture
def orin():
    return MachineInfo("Orin", "8.7", "10.3.0")


@pytest.fixture
def rtx():
    return MachineInfo("NVIDIA GeForce RTX 4090", "8.9", "10.7.0")


def _key(machine, **kw):
    profile = P.Profile(1, 4, 16, 3, 128, 128)
    return dataclasses.replace(BE.make_key(machine, "int8", "a" * 64, profile), **kw)


# -- key -------------------------------------------------------------------------------------------------
def test_key_digest_is_stable_and_round_trips(orin):
    k = _key(orin)
    assert k.digest() == _key(orin).digest()
    assert len(k.digest()) == 16 and set(k.digest()) <= set("0123456789abcdef")   # 16 lowercase hex digits
    assert _key(orin, precision="fp16").digest() != k.digest()                     # and it keys on what matters
    assert BE.EngineKey.from_dict(json.loads(json.dumps(k.to_dict()))) == k
    engine, sidecar = BE.engine_paths("/b/engines", k)
    assert engine.name == f"{k.digest()}.engine" and sidecar.name == f"{k.digest()}.json"


@pytest.mark.parametrize("field,value", [
    ("gpu_name", "Orin NX"), ("compute_capability", "8.9"), ("trt_version", "10.7.0"), ("precision", "fp16"),
    ("onnx_sha256", "b" * 64), ("batch_min", 2), ("batch_opt", 8), ("batch_max", 32), ("height", 256),
    ("width", 96), ("dla_core", 0), ("key_version", 99)])
def test_key_digest_changes_with_every_field(orin, field, value):
    assert _key(orin).digest() != _key(orin, **{field: value}).digest()


def test_every_key_field_is_covered_by_the_sensitivity_test():
    covered = {"gpu_name", "compute_capability", "trt_version", "precision", "onnx_sha256", "batch_min", "batch_opt",
               "batch_max", "height", "width", "dla_core", "key_version"}
    assert {f.name for f in dataclasses.fields(BE.EngineKey)} == covered


# -- mismatch --------------------------------------------------------------------------------------------
def test_mismatch_names_every_differing_machine_field(orin, rtx):
    with pytest.raises(ConfigError) as exc:
        BE.check_engine_key(_key(orin), rtx, rebuild="usedge build out/bundle --target desktop-gpu")
    msg = str(exc.value)
    assert "built for TensorRT 10.3.0 on Orin (8.7)" in msg
    assert "this machine has TensorRT 10.7.0 on NVIDIA GeForce RTX 4090 (8.9)" in msg
    for f in ("gpu_name", "compute_capability", "trt_version"):
        assert f in msg
    assert "`usedge build out/bundle --target desktop-gpu`" in msg


def test_mismatch_lists_only_what_differs(orin):
    newer = dataclasses.replace(orin, trt_version="10.4.0")
    diff = BE.key_mismatches(_key(orin), newer)
    assert diff == {"trt_version": ("10.3.0", "10.4.0")}
    with pytest.raises(ConfigError) as exc:
        BE.check_engine_key(_key(orin), newer)
    assert "trt_version 10.3.0 -> 10.4.0" in str(exc.value)
    assert "gpu_name" not in str(exc.value) and "compute_capability" not in str(exc.value)


def test_mismatch_on_onnx_checksum_only(orin):
    with pytest.raises(ConfigError, match="onnx_sha256 aaaaaaaaaaaa… -> bbbbbbbbbbbb…"):
        BE.check_engine_key(_key(orin), orin, onnx_sha256="b" * 64)
    BE.check_engine_key(_key(orin), orin, onnx_sha256="a" * 64)  # matches: no error


def test_key_mismatches_between_full_keys(orin):
    diff = BE.key_mismatches(_key(orin), _key(orin, precision="fp16", batch_max=8))
    assert diff == {"precision": ("int8", "fp16"), "batch_max": (16, 8)}


# -- sidecar ---------------------------------------------------------------------------------------------
def _write_engine(folder, key, data=b"plan-bytes", **build):
    import hashlib

    engine, side = BE.engine_paths(folder, key)
    folder.mkdir(parents=True, exist_ok=True)
    engine.write_bytes(data)
    sc = BE.Sidecar(key, hashlib.sha256(data).hexdigest(), len(data), {"bundle": "out/bundle", "target": "t", **build})
    side.write_text(json.dumps(sc.to_dict()))
    return engine


def test_sidecar_round_trip_and_checksum(tmp_path, orin):
    engine = _write_engine(tmp_path, _key(orin))
    sc = BE.read_sidecar(engine)
    assert sc.key == _key(orin) and BE.verify_engine_file(engine, sc) == b"plan-bytes"
    assert sc.rebuild_hint == "usedge build out/bundle --target t --precision int8"
    engine.write_bytes(b"plan-bytez")
    with pytest.raises(DataError, match="does not match the checksum"):
        BE.verify_engine_file(engine, sc)


def test_engine_without_sidecar_is_refused(tmp_path):
    (tmp_path / "x.engine").write_bytes(b"plan")
    with pytest.raises(DataError, match="no sidecar x.json; refusing"):
        BE.read_sidecar(tmp_path / "x.engine")


def test_edited_sidecar_is_refused(tmp_path, orin):
    engine = _write_engine(tmp_path, _key(orin))
    side = BE.sidecar_path(engine)
    raw = json.loads(side.read_text())
    raw["key"]["trt_version"] = "10.7.0"  # hand-edited to "make it load"
    side.write_text(json.dumps(raw))
    with pytest.raises(DataError, match="key_hash does not match"):
        BE.read_sidecar(engine)
    side.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        BE.read_sidecar(engine)


def test_select_engine(tmp_path, orin, rtx):
    small = _write_engine(tmp_path, _key(rtx, batch_max=4), b"a")
    big = _write_engine(tmp_path, _key(rtx), b"b")
    _write_engine(tmp_path, _key(orin), b"c")
    _write_engine(tmp_path, _key(rtx, precision="fp16"), b"d")
    (tmp_path / "orphan.engine").write_bytes(b"x")  # no sidecar: skipped
    found = BE.list_engines(tmp_path)
    assert len(found) == 4
    assert BE.select_engine(found, rtx, "int8", "a" * 64) == big != small
    with pytest.raises(ConfigError, match="no fp32 TensorRT engine found \\(engines present: fp16, int8\\)"):
        BE.select_engine(found, rtx, "fp32")
    with pytest.raises(ConfigError, match="no engine fits this machine") as exc:
        BE.select_engine(found, dataclasses.replace(rtx, trt_version="10.8.0"), "fp16")
    assert "trt_version 10.7.0 -> 10.8.0" in str(exc.value)
    with pytest.raises(ConfigError, match="onnx_sha256"):
        BE.select_engine(found, rtx, "int8", "c" * 64)

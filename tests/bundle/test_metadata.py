"""metadata.json as typed data: every field validated at load, older schemas migrated, readers typed."""
import json
from pathlib import Path

import pytest

from usedge.bundle import SCHEMA_VERSION, BundleMetadata, load_bundle, migrate
from usedge.errors import DataError

PACKAGED = Path(__file__).resolve().parents[2] / "usedge" / "assets" / "default_bundle"


def _meta(**over):
    base = {"schema_version": SCHEMA_VERSION, "files": {"model.int8.onnx": {"sha256": "0" * 64, "bytes": 1}},
            "tasks": [{"id": "FUGC"}, {"id": "fetal_head", "kind": "segmentation"}],
            "input": {"name": "images", "shape": ["N", 3, 128, 128], "dtype": "float32",
                      "preprocess": {"size": 128, "resize": "bilinear", "seg_decode": "argmax-nearest"}},
            "outputs": [{"name": "FUGC.points", "task": "FUGC", "field": "points", "shape": ["N", 2, 2]}],
            "int8": {"passed": True, "method": "qat", "float_layers": ["/FUGC/.*"], "attempts": 1, "signed_int8": 91},
            "latency": {"int8": {"openvino": {"p50_ms": 2.0}}}}
    return {**base, **over}


def test_typed_fields(tmp_path):
    m = BundleMetadata.from_dict(_meta(), tmp_path)
    assert m.task_ids == ["FUGC", "fetal_head"] and m.tasks[0].kind == "regression"
    assert m.tasks[0].points == ("internal_os", "external_os")          # from the task registry when absent
    assert (m.input.name, m.input.shape[2], m.input.preprocess.resize) == ("images", 128, "bilinear")
    assert m.outputs[0].field == "points" and m.precisions == ["int8"] and m.files["model.int8.onnx"].bytes == 1
    assert m.int8_gate_passed and m.int8.float_layers == ("/FUGC/.*",) and m.int8.signed_int8 == 91


@pytest.mark.parametrize("over, message", [
    ({"schema_version": 99}, "schema version 99 is not supported"),
    ({"int8": [1]}, "'int8' is a JSON list"),
    ({"outputs": [{"shape": [1]}]}, "'outputs' entry"),
    ({"input": {"shape": ["N", 3, 64, 64], "preprocess": {"size": 64, "seg_decode": "soft"}}}, "preprocess .* not valid"),
    # issue 26, class 3: bool("false") is True, so a string read as a passed gate
    ({"int8": {"passed": "false"}}, "int8.passed is 'false' .* true/false"),
    ({"int8": {"passed": True, "zero_points_all_zero": 1}}, "int8.zero_points_all_zero is 1"),
    ({"int8": {"passed": True, "quantizers": True}}, "int8.quantizers is True .* integer"),
    # issue 26, class 6: hand-edited sections gave raw TypeErrors and ValueErrors at load
    ({"latency": [1]}, "'latency' is a JSON list, not an object"),
    ({"latency": {"int8": 3}}, "latency 'int8' is a JSON int"),
    ({"model": "abc"}, "'model' is a JSON str, not an object"),
    ({"precisions": 5}, "'precisions' is a JSON int, not a list"),
    ({"int8": {"passed": True, "check": "yes"}}, "int8.check is a JSON str, not an object"),
])
def test_each_bad_field_is_named(tmp_path, over, message):
    with pytest.raises(DataError, match=message):
        BundleMetadata.from_dict(_meta(**over), tmp_path)


def test_schema_1_bundles_migrate_and_the_packaged_one_still_loads(tmp_path):
    old = _meta(schema_version=1)
    old["input"]["preprocess"] = {"size": 128, "resize": "square stretch; INTER_AREA when shrinking, else INTER_LINEAR"}
    new = migrate(old)
    assert new["schema_version"] == 2 and new["input"]["preprocess"]["resize"] == "area"
    assert new["input"]["preprocess"]["seg_decode"] == "logits" and old["schema_version"] == 1   # a copy
    # a schema-1 bundle on disk (the packaged one as schema 1 wrote it: no seg_decode, the old resize text) loads
    import shutil

    shutil.copytree(PACKAGED, tmp_path / "v1")
    raw = json.loads((tmp_path / "v1" / "metadata.json").read_text())
    raw["schema_version"] = 1
    raw["input"]["preprocess"].pop("seg_decode", None)
    raw["input"]["preprocess"]["resize"] = "square stretch; INTER_AREA when shrinking, else INTER_LINEAR"
    (tmp_path / "v1" / "metadata.json").write_text(json.dumps(raw))
    packaged = load_bundle(tmp_path / "v1")
    assert packaged.meta.schema_version == 2 and packaged.preprocess.resize == "area" and len(packaged.tasks) == 27


def test_a_failed_zip_leaves_no_partial_archive(tmp_path, monkeypatch):
    """Issue 26, class 2: `export --zip` failing at its end left a 19 MB .bundle.zip.tmp."""
    import zipfile

    from usedge.bundle.files import zip_bundle

    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"x" * 1000)

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        zip_bundle(folder, tmp_path / "bundle.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.parametrize("content, message", [
    ("[" * 100000 + "]" * 100000, "nests deeper than any metadata file"),
    (b'{"a": "\xff\xfe"}', "is not UTF-8 text"),
    ("{", "is not valid JSON"),
])
def test_unreadable_metadata_files_are_one_clear_error(tmp_path, content, message):
    folder = tmp_path / "b"
    folder.mkdir()
    target = folder / "metadata.json"
    target.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=message):
        load_bundle(folder)
    target.unlink()
    target.mkdir()                                   # a directory named metadata.json
    with pytest.raises(DataError, match="is a folder"):
        load_bundle(folder)


def _zip_with(tmp_path, payload: bytes):
    import zipfile

    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", '{"schema_version": 2}')
        z.writestr("model.fp32.onnx", payload)
    return path


@pytest.mark.parametrize("damage", ["crc", "lying size", "truncated"])
def test_a_damaged_bundle_zip_is_a_clear_error_and_leaves_nothing(tmp_path, damage, monkeypatch):
    """Issue 26, class 6: bundle zips with a bad CRC or a lying size gave raw zipfile tracebacks."""
    import struct
    import zipfile

    from usedge.bundle import files

    monkeypatch.setattr(files, "ZIP_CACHE", tmp_path / "cache")
    payload = bytes(range(256)) * 400
    path = _zip_with(tmp_path, payload)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("model.fp32.onnx")
    data_at = info.header_offset + 30 + len(info.filename)
    if damage == "crc":
        raw[data_at + 40] ^= 0xFF                                           # one byte of the compressed data
    elif damage == "lying size":                                           # local header and directory both say 100
        struct.pack_into("<I", raw, info.header_offset + 22, 100)
        central = raw.rindex(b"PK\x01\x02")
        struct.pack_into("<I", raw, central + 24, 100)
    else:
        raw = raw[: data_at + 100] + raw[raw.rindex(b"PK\x01\x02") - 0:]   # data cut short, directory kept
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="damaged zip" if damage != "truncated" else "damaged zip|not a zip") as err:
        load_bundle(path)
    assert "Fix:" in str(err.value)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())   # no half extraction


def test_write_bundle_refuses_metadata_its_readers_would_refuse(tmp_path):
    """Issue 27: typed on write too. A NaN, or a section of the wrong type, never reaches metadata.json."""
    from usedge.bundle import write_bundle

    good = {"tasks": [{"id": "FUGC"}], "input": {"shape": ["N", 3, 64, 64], "preprocess": {"size": 64}}}
    assert load_bundle(write_bundle(tmp_path / "ok", {"notes.txt": "x"}, good)).tasks == ["FUGC"]
    for bad in ({**good, "latency": float("nan")}, {**good, "input": "64x64"}):
        with pytest.raises(DataError, match="refusing to write bundle metadata"):
            write_bundle(tmp_path / "bad", {"notes.txt": "x"}, bad)
        assert not (tmp_path / "bad").exists()

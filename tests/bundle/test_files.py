"""The bundle on disk (usedge.bundle.files): atomic writes; tampering, truncation and zip-slip refused."""
import zipfile

import pytest

from usedge.bundle import extract_zip, load_bundle, write_bundle
from usedge.errors import DataError


def test_bundle_refuses_tampering_truncation_and_zip_slip(exported, tmp_path):
    _, _, info = exported
    out = write_bundle(tmp_path / "b", {"model.fp32.onnx": info.path, "notes.txt": "hello"},
                       {"tasks": [{"id": "FUGC"}], "input": {"shape": ["N", 3, 64, 64], "preprocess": {"size": 64}}},
                       make_zip=True)
    b = load_bundle(out)
    assert b.precisions == ["fp32"] and b.preprocess.size == 64 and b.tasks == ["FUGC"]
    assert load_bundle(tmp_path / "b.zip").metadata["files"] == b.metadata["files"]
    (out / "notes.txt").write_text("hellO")
    with pytest.raises(DataError, match="does not match the checksum"):
        load_bundle(out)
    (out / "notes.txt").write_text("hello")
    data = (out / "model.fp32.onnx").read_bytes()
    (out / "model.fp32.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="modified or truncated"):
        load_bundle(out)
    meta = (out / "metadata.json").read_text()
    (out / "metadata.json").write_text(meta[: len(meta) // 2])
    with pytest.raises(DataError, match="truncated or edited"):
        load_bundle(out)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", "x")
    with pytest.raises(DataError, match="outside the bundle"):
        extract_zip(evil, tmp_path / "x")
    assert not (tmp_path / "outside.txt").exists()
    # anything that is not a bundle is never replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(DataError, match="not a usedge bundle"):
        write_bundle(tmp_path / "mine", {"a.txt": "a"}, {})

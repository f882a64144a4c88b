"""``usedge measure`` as a user runs it: a real DICOM cine to a table, CSV, DICOM SR and SEG; JSON lines; clear
errors for what cannot be done."""
from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from usedge.cli.main import cli


@pytest.fixture(scope="module")
def echo_path():
    from usedge.stream.sources import echo_cine_path

    try:
        return echo_cine_path()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"pydicom-data's SonoSite cine is not installed: {exc}")


def test_a_cine_is_measured_tracked_and_written_as_csv_sr_and_seg(echo_path, tmp_path):
    pydicom = pytest.importorskip("pydicom")
    pytest.importorskip("highdicom", reason="the dicom extra (highdicom) is not installed")
    out = {k: tmp_path / f"m.{k}" for k in ("csv", "sr", "seg")}
    res = CliRunner().invoke(cli, ["measure", str(echo_path), "--tasks", "cardiac_multi", "--max-frames", "12",
                                   "--window", "12", "--csv", str(out["csv"]), "--sr", str(out["sr"]),
                                   "--seg", str(out["seg"])])
    assert res.exit_code == 0, res.output
    assert "| LV_length |" in res.output and "12/12 frames" in res.output and "| LV_EF |" in res.output
    rows = list(csv.DictReader(out["csv"].open()))
    assert {r["frame"] for r in rows} == {str(i) for i in range(12)}
    assert {r["calibration"] for r in rows} == {"dicom"} and {r["unit"] for r in rows} >= {"mm", "mm2", "ml"}
    sr, seg = pydicom.dcmread(out["sr"]), pydicom.dcmread(out["seg"])
    source = pydicom.dcmread(echo_path, stop_before_pixels=True)
    assert sr.StudyInstanceUID == seg.StudyInstanceUID == source.StudyInstanceUID
    assert sr.Modality == "SR" and seg.Modality == "SEG"


def test_json_lines_per_frame_then_the_summary(tmp_path):
    from pydicom.data import get_testdata_file

    path = get_testdata_file("US1_UNCR.dcm", download=False)
    if not path:
        pytest.skip("pydicom-data's US1_UNCR.dcm is not installed")
    res = CliRunner().invoke(cli, ["measure", path, "--tasks", "fetal_head", "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert lines[0]["frame"] == 0 and {m["name"] for m in lines[0]["measurements"]} >= {"HC", "BPD"}
    assert all(m["unit"] in ("px", "%", "weeks") for m in lines[0]["measurements"])    # no regions: px, said so
    assert "summary" in lines[-1] and "exam" in lines[-1]


def test_sr_needs_a_dicom_and_a_live_source_needs_an_end(tmp_path):
    import cv2
    import numpy as np

    png = tmp_path / "a.png"
    cv2.imwrite(str(png), np.zeros((64, 64), np.uint8))
    res = CliRunner().invoke(cli, ["measure", str(png), "--sr", str(tmp_path / "x.dcm")])
    assert res.exit_code != 0 and "not a DICOM file" in res.output
    res = CliRunner().invoke(cli, ["measure", "phantom"])
    assert res.exit_code != 0 and "--max-frames" in res.output


def test_stream_measure_writes_measurements_in_every_record(tmp_path):
    out = tmp_path / "s.jsonl"
    res = CliRunner().invoke(cli, ["stream", "phantom", "--tasks", "fetal_head", "--max-frames", "8", "--fps", "400",
                                   "--measure", "--jsonl", str(out)])
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    results = [r for r in records if r["event"] == "result"]
    assert len(results) == 8 and all("measurements" in r and "tracked" in r for r in results)
    hc = {m["name"]: m for m in results[0]["measurements"]}["HC"]
    assert hc["unit"] == "mm" and hc["calibration"]["source"] == "phantom"
    assert "HC: " in res.output
    bad = CliRunner().invoke(cli, ["stream", "phantom", "--max-frames", "2", "--mm-per-pixel", "0.2"])
    assert bad.exit_code != 0 and "with --measure" in bad.output

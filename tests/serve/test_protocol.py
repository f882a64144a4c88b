"""The serve wire protocol without a server: raw header, magic detection, size limits, options, messages."""
import json
import struct

import cv2
import numpy as np
import pytest

from usedge.serve import protocol as p


def _jpeg(image, quality=90):
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def _png(image):
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("shape,dtype", [((5, 7), np.uint8), ((5, 7, 3), np.uint8), ((4, 6, 4), np.uint8),
                                         ((5, 7), np.uint16), ((3, 2, 3), np.uint16)])
def test_raw_round_trip(shape, dtype):
    rng = np.random.default_rng(0)
    image = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    data = p.encode_raw(image)
    assert data[:4] == b"USR1" and len(data) == 10 + image.nbytes
    header = p.parse_raw_header(data)
    assert (header.height, header.width) == shape[:2] and header.channels == (shape[2] if len(shape) == 3 else 1)
    out = p.decode_frame(data)
    assert out.dtype == dtype and out.shape == shape and np.array_equal(out, image)


def test_raw_header_layout_is_little_endian():
    data = p.encode_raw(np.zeros((0x0102, 3), np.uint16))
    assert data[:10] == b"USR1" + bytes([0x02, 0x01, 3, 0, 1, 2])
    assert p.RAW_HEADER.size == 10
    pixels = p.encode_raw(np.array([[0x0102]], np.uint16))[10:]
    assert pixels == b"\x02\x01"


@pytest.mark.parametrize("data,match", [
    (b"USR1\x01\x00", "shorter than its 10-byte header"),
    (struct.pack("<4sHHBB", b"USR1", 0, 4, 1, 1), "empty"),
    (struct.pack("<4sHHBB", b"USR1", 2, 2, 2, 1) + bytes(8), "channels"),
    (struct.pack("<4sHHBB", b"USR1", 2, 2, 1, 9) + bytes(4), "dtype code"),
    (struct.pack("<4sHHBB", b"USR1", 2, 2, 1, 1) + bytes(3), "needs 4 pixel bytes"),
    (struct.pack("<4sHHBB", b"USR1", 2, 2, 1, 2) + bytes(4), "needs 8 pixel bytes"),
])
def test_bad_raw_frames_say_what_is_wrong(data, match):
    with pytest.raises(p.ProtocolError, match=match):
        p.decode_frame(data)


def test_magic_detection():
    img = np.full((8, 8), 128, np.uint8)
    assert p.detect_kind(_jpeg(img)) == "jpeg"
    assert p.detect_kind(_png(img)) == "png"
    assert p.detect_kind(p.encode_raw(img)) == "raw"
    for junk in (b"", b"GIF89a....", b"\x00" * 20, b"USR"):
        with pytest.raises(p.ProtocolError, match="unknown binary message"):
            p.detect_kind(junk)


def test_encoded_images_decode_with_their_size():
    grey = np.tile(np.arange(40, dtype=np.uint8), (30, 1))
    bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    assert p.image_size(_jpeg(grey)) == (40, 30)
    assert p.image_size(_png(bgr)) == (40, 30)
    assert p.decode_frame(_jpeg(grey)).shape == (30, 40)
    assert p.decode_frame(_png(bgr)).shape == (30, 40, 3)
    deep = (grey.astype(np.uint16) * 257)
    out = p.decode_frame(_png(deep))
    assert out.dtype == np.uint16 and np.array_equal(out, deep)


def test_truncated_or_garbage_images_are_refused():
    jpeg = _jpeg(np.zeros((16, 16), np.uint8))
    with pytest.raises(p.ProtocolError):
        p.decode_frame(jpeg[:3] + b"\x00" * 50)
    with pytest.raises(p.ProtocolError, match="IHDR"):
        p.decode_frame(p.PNG_MAGIC + b"garbage")
    with pytest.raises(p.ProtocolError, match="could not decode"):   # valid header, no pixel data
        p.decode_frame(jpeg[:len(jpeg) // 3])


def test_pixel_limit_is_checked_before_decoding():
    png = _png(np.zeros((100, 100), np.uint8))
    with pytest.raises(p.ProtocolError, match="MP limit"):
        p.decode_frame(png, max_pixels=5000)
    huge_header = struct.pack("<4sHHBB", b"USR1", 60000, 60000, 1, 1)   # 3.6 GP: refused from the header alone
    with pytest.raises(p.ProtocolError, match="MP limit"):
        p.decode_frame(huge_header)


def test_size_limit():
    p.check_size(100, 100)
    with pytest.raises(p.MessageTooBig, match="101 bytes is above the 100-byte limit") as info:
        p.check_size(101, 100)
    assert "--max-message-mb" in info.value.fix
    assert issubclass(p.MessageTooBig, p.ProtocolError)


def test_options_parse_and_merge():
    o = p.parse_options('{"tasks": ["fetal_head"], "overlay": true}')
    assert o == p.ClientOptions(tasks=("fetal_head",), overlay=True, contours=False)
    o2 = p.parse_options('{"contours": true}', o)
    assert o2.tasks == ("fetal_head",) and o2.overlay and o2.contours
    assert p.parse_options('{"tasks": "all"}', o2).tasks is None
    assert p.parse_options('{"tasks": "a,b"}').tasks == ("a", "b")


@pytest.mark.parametrize("text,match", [("not json", "not JSON"), ("[1, 2]", "JSON object"),
                                        ('{"colour": 1}', "unknown option"), ('{"overlay": 1}', "true or false"),
                                        ('{"tasks": []}', "non-empty list"), ('{"tasks": [3]}', "non-empty list")])
def test_bad_options(text, match):
    with pytest.raises(p.ProtocolError, match=match):
        p.parse_options(text)


def test_server_messages_are_json():
    latency = {"infer": 1.23456, "bad": float("nan")}
    msg = json.loads(p.encode_result(3, {"tasks": {}, "x": np.float32(1.5)}, latency, 2))
    assert msg == {"frame": 3, "result": {"tasks": {}, "x": 1.5}, "latency_ms": {"infer": 1.235}, "dropped": 2}
    assert json.loads(p.encode_error("bad", frame=4, fix="do this")) == {"error": "bad", "fix": "do this", "frame": 4}
    assert json.loads(p.encode_options(p.ClientOptions(("a",)))) == {
        "options": {"tasks": ["a"], "overlay": False, "contours": False, "measure": False, "mm_per_pixel": None}}
    assert p.parse_options('{"measure": true, "mm_per_pixel": [0.2, 0.3]}').mm_per_pixel == (0.2, 0.3)
    for bad in ('{"mm_per_pixel": -1}', '{"mm_per_pixel": [1]}', '{"mm_per_pixel": true}', '{"measure": 1}'):
        with pytest.raises(p.ProtocolError):
            p.parse_options(bad)


def test_protocol_does_not_import_fastapi():
    import subprocess
    import sys

    code = "import sys, usedge.serve.protocol, usedge.serve; print('fastapi' in sys.modules, 'uvicorn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False False"


def test_ingest_downscales_big_frames_and_decodes_big_jpegs_reduced(monkeypatch):
    import usedge.serve.protocol as P

    reduces = []
    real = P._decode_encoded
    monkeypatch.setattr(P, "_decode_encoded", lambda data, kind, reduce=1: (reduces.append(reduce),
                                                                            real(data, kind, reduce))[1])
    big = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (1200, 2000), dtype=np.uint8), (9, 9), 0)
    got = P.ingest(_jpeg(big), max_side=400)
    assert (got.width, got.height) == (2000, 1200) and got.scaled and max(got.image.shape[:2]) == 400
    assert reduces == [4]                      # 2000 px decoded as 500 by libjpeg, then shrunk to 400
    deep = P.ingest(_png((big.astype(np.uint16) * 257)), max_side=500)
    assert deep.image.dtype == np.uint8 and deep.image.shape == (300, 500)
    np.testing.assert_array_equal(P.ingest(_png(big[:300, :400]), max_side=400).image, big[:300, :400])  # as sent


def test_rescale_result_maps_pixels_back_to_the_frame_as_sent():
    from usedge.serve.protocol import rescale_result

    payload = {"width": 100, "height": 50, "region": None, "tasks": {
        "s": {"kind": "segmentation", "mask_shape": [50, 100], "area_pixels": {"a": 10},
              "contours": {"a": [[[1, 2], [3, 4]]]}},
        "d": {"kind": "detection", "bbox_pixels": [10.0, 5.0, 20.0, 10.0], "bbox_normalized": [0.1, 0.1, 0.2, 0.2],
              "boxes_pixels": [[0.0, 0.0, 50.0, 25.0]]},
        "r": {"kind": "regression", "predicted_points_pixels": [1.0, 2.0, 3.0, 4.0]},
        "c": {"kind": "classification", "predicted_class": 1}}}
    out = rescale_result(payload, 400, 150)
    assert (out["width"], out["height"], out["analysed"]) == (400, 150, {"width": 100, "height": 50})
    t = out["tasks"]
    assert t["s"]["mask_shape"] == [150, 400] and t["s"]["area_pixels"] == {"a": 120}
    assert t["s"]["contours"] == {"a": [[[4, 6], [12, 12]]]}
    assert t["d"]["bbox_pixels"] == [40.0, 15.0, 80.0, 30.0] and t["d"]["bbox_normalized"] == [0.1, 0.1, 0.2, 0.2]
    assert t["d"]["boxes_pixels"] == [[0.0, 0.0, 200.0, 75.0]]
    assert t["r"]["predicted_points_pixels"] == [4.0, 6.0, 12.0, 12.0] and t["c"] == {"kind": "classification",
                                                                                      "predicted_class": 1}
    assert rescale_result(payload, 100, 50) is payload

"""core.vision.faces: detection on real faces in scenes, cropping at edges, upload decoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.vision.faces import (
    FaceBox,
    ImageError,
    crop_face,
    decode_image,
    fit_width,
    is_blank,
    prepare_face,
    to_gray,
)
from tests.support.scenes import background, layout, scene


def _first_detectable(detectable, n):
    ids = [i for cls in sorted(detectable) for i in detectable[cls]]
    assert len(ids) >= n
    return ids[:n]


def test_finds_a_face_where_it_was_pasted(public_test, detector, detectable):
    x, _ = public_test
    (i,) = _first_detectable(detectable, 1)
    box = layout(1)[0]
    found = detector.detect(scene([x[i]], [box]))
    assert len(found) == 1 and found[0].iou(box) > 0.4


def test_finds_every_face_of_a_group(public_test, detector, detectable):
    x, _ = public_test
    ids = _first_detectable(detectable, 3)
    boxes = layout(3, size=180)
    found = detector.detect(scene([x[i] for i in ids], boxes, seed=3))
    assert len(found) == 3
    for box in boxes:
        assert max(f.iou(box) for f in found) > 0.4
    assert [f.area for f in found] == sorted((f.area for f in found), reverse=True)


def test_no_face_in_an_empty_room_or_a_black_frame(detector):
    assert detector.detect(background(5)) == []
    black = np.zeros((480, 640, 3), np.uint8)
    assert detector.detect(black) == [] and is_blank(to_gray(black))
    assert not is_blank(to_gray(background(5)))


def test_crop_at_the_frame_edge_is_clipped_not_broken():
    gray = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    crop = crop_face(gray, FaceBox(80, -10, 40, 40))
    assert crop.shape == (33, 23)  # rows 0..33 (top clipped), columns 77..100 (right clipped)
    assert prepare_face(gray, FaceBox(80, -10, 40, 40)).shape == (48, 48)
    with pytest.raises(ImageError):
        crop_face(gray, FaceBox(200, 200, 10, 10))


def test_decode_accepts_images_and_rejects_the_rest(public_test):
    x, _ = public_test
    frame = scene([x[0]], layout(1))
    for ext in (".jpg", ".png", ".webp"):
        ok, data = cv2.imencode(ext, frame)
        assert ok
        decoded = decode_image(data.tobytes())
        assert decoded.shape == frame.shape
    with pytest.raises(ImageError, match="not an image"):
        decode_image(b"%PDF-1.7 definitely not a picture")
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")
    ok, data = cv2.imencode(".png", frame)
    with pytest.raises(ImageError):
        decode_image(data.tobytes()[:200])  # truncated upload


def test_fit_width_keeps_aspect():
    wide = np.zeros((1000, 4000, 3), np.uint8)
    assert fit_width(wide, 1280).shape == (320, 1280, 3)
    small = np.zeros((10, 20, 3), np.uint8)
    assert fit_width(small) is small


def test_detect_near_follows_a_moved_face_and_reports_a_lost_one(public_test, detector, detectable):
    x, _ = public_test
    face = x[detectable[3][0]]
    box = layout(1, 200)[0]
    start = detector.detect(scene([face], [box], seed=1))[0]
    moved = FaceBox(box.x + 18, box.y - 12, box.w, box.h)
    followed = detector.detect_near(scene([face], [moved], seed=1), start)
    assert followed is not None and followed.iou(moved) > 0.5
    assert followed.x > start.x and followed.y < start.y  # it went where the face went
    empty_room = scene([], [], seed=1)
    assert detector.detect_near(empty_room, start) is None
    edge = FaceBox(-40, box.y, box.w, box.h)  # half out of the frame: no crash
    detector.detect_near(scene([face], [edge], seed=1), FaceBox(0, box.y, 160, box.h))

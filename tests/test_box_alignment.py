"""Boxes on the face: a real FER2013 face walks across a 640x480 scene through `LiveAnalyzer`;
on every frame after the first detection, the drawn box, the reported box and the crop that
goes to the emotion model all sit on the true face."""

from __future__ import annotations

import numpy as np
import pytest

from core.vision import live
from core.vision.faces import FaceBox
from core.vision.live import LiveAnalyzer
from tests.support.scenes import scene

FRAMES = 24


def _path(step: int) -> FaceBox:
    """Left to right, 16 px a frame, bobbing up and down, growing a little (walking closer)."""
    size = 170 + 2 * step
    return FaceBox(20 + 16 * step, 120 + round(40 * np.sin(step / 3)), size, size)


def _drawn_on(annotated: np.ndarray, raw: np.ndarray, box: FaceBox) -> float:
    """Share of the box's left and top edges that the annotation changed (1 = box drawn there)."""
    changed = np.any(annotated != raw, axis=2)
    h, w = changed.shape
    left = changed[max(0, box.y) : min(h, box.y + box.h), min(w - 1, max(0, box.x))]
    top = changed[min(h - 1, max(0, box.y)), max(0, box.x) : min(w, box.x + box.w)]
    return float(np.concatenate([left, top]).mean())


@pytest.mark.parametrize("detect_every", [1, 4])
def test_boxes_follow_a_moving_face(
    public_test, shipped_model, detector, detectable, monkeypatch, detect_every
):
    x, _ = public_test
    face = x[detectable[3][0]]
    cropped: list[FaceBox] = []
    real_prepare = live.prepare_face

    def recording_prepare(gray, box, *args, **kwargs):
        cropped.append(box)
        return real_prepare(gray, box, *args, **kwargs)

    monkeypatch.setattr(live, "prepare_face", recording_prepare)
    clock = iter(np.arange(0, 100, 0.07))
    analyzer = LiveAnalyzer(
        shipped_model, detector, detect_every=detect_every, clock=lambda: next(clock)
    )
    seen_from = None
    for step in range(FRAMES):
        truth = _path(step)
        frame = scene([face], [truth], seed=5)
        cropped.clear()
        annotated = analyzer.process(frame)
        faces = analyzer.snapshot().faces
        if seen_from is None and faces:
            seen_from = step
        if seen_from is None:
            continue
        assert len(faces) == 1, f"frame {step}: {analyzer.snapshot().status}"
        shown = faces[0].box
        assert shown.iou(truth) >= 0.5, f"frame {step}: reported {shown}, face at {truth}"
        assert len(cropped) == 1 and cropped[0].iou(truth) >= 0.5, f"frame {step}: crop {cropped}"
        assert _drawn_on(annotated, frame, shown) > 0.9, f"frame {step}: box not drawn at {shown}"
    assert seen_from is not None and seen_from <= 1


def test_a_resolution_change_leaves_no_ghost_boxes(
    public_test, shipped_model, detector, detectable
):
    """WebRTC drops a busy stream from 640x480 to 320x240 and back: after each switch there is
    still one face, boxed where it is in the new frame (the old size's boxes do not linger)."""
    import cv2

    x, _ = public_test
    face = x[detectable[3][0]]
    truth = FaceBox(200, 120, 220, 220)
    big = scene([face], [truth], seed=5)
    small = cv2.resize(big, (320, 240), interpolation=cv2.INTER_AREA)
    half = FaceBox(truth.x // 2, truth.y // 2, truth.w // 2, truth.h // 2)
    clock = iter(np.arange(0, 100, 0.07))
    analyzer = LiveAnalyzer(shipped_model, detector, detect_every=8, clock=lambda: next(clock))
    for frame, where in [(big, truth)] * 3 + [(small, half)] * 4 + [(big, truth)] * 3:
        analyzer.process(frame)
        faces = analyzer.snapshot().faces
        assert len(faces) == 1, analyzer.snapshot().status
        assert faces[0].box.iou(where) >= 0.5, f"box {faces[0].box}, face at {where}"

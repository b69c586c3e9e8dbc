"""Synthetic camera scenes built from real FER2013 faces, for tests, benchmarks and demos.

A scene is a 640x480 BGR frame with faces pasted (upscaled) onto a textured background.
`write_y4m` turns frames into the raw video Chromium's fake camera plays
(`--use-file-for-fake-video-capture`).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from core.vision.faces import FaceBox, FaceDetector

WIDTH, HEIGHT = 640, 480


def background(seed: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A soft coloured gradient with mild noise (a room-like backdrop, no faces)."""
    rng = np.random.default_rng(seed)
    top, bottom = rng.integers(40, 200, 3), rng.integers(40, 200, 3)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    image = (top * (1 - ramp) + bottom * ramp).repeat(width, axis=1)
    image = image + rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def paste_face(frame: np.ndarray, face: np.ndarray, box: FaceBox) -> np.ndarray:
    """Paste a grayscale face, resized to `box`, into a BGR frame (clipped at the edges)."""
    resized = cv2.resize(face, (box.w, box.h), interpolation=cv2.INTER_CUBIC)
    x1, y1 = max(0, box.x), max(0, box.y)
    x2, y2 = min(frame.shape[1], box.x + box.w), min(frame.shape[0], box.y + box.h)
    if x2 > x1 and y2 > y1:
        patch = resized[y1 - box.y : y2 - box.y, x1 - box.x : x2 - box.x]
        frame[y1:y2, x1:x2] = patch[..., None]
    return frame


def scene(faces: Sequence[np.ndarray], boxes: Sequence[FaceBox], seed: int = 0) -> np.ndarray:
    """A frame holding each face at its box."""
    frame = background(seed)
    for face, box in zip(faces, boxes, strict=True):
        paste_face(frame, face, box)
    return frame


def layout(count: int, size: int = 200) -> list[FaceBox]:
    """Boxes for 1-3 faces spread across a 640x480 frame."""
    if count == 1:
        return [FaceBox((WIDTH - size) // 2, (HEIGHT - size) // 2, size, size)]
    step = WIDTH // count
    small = min(size, step - 20)
    return [
        FaceBox(i * step + (step - small) // 2, (HEIGHT - small) // 2, small, small)
        for i in range(count)
    ]


def detectable_faces(
    faces: np.ndarray, detector: FaceDetector, size: int = 200, limit: int = 10
) -> list[int]:
    """Indices of faces that the detector finds when pasted alone into a scene."""
    found = []
    box = layout(1, size)[0]
    for i, face in enumerate(faces):
        boxes = detector.detect(scene([face], [box], seed=i))
        if len(boxes) == 1 and boxes[0].iou(box) > 0.4:
            found.append(i)
            if len(found) >= limit:
                break
    return found


def write_y4m(frames: Iterable[np.ndarray], path: Path, fps: int = 15) -> Path:
    """Write BGR frames (all the same size, even dimensions) as a 4:2:0 .y4m video."""
    with open(path, "wb") as out:
        header_written = False
        for frame in frames:
            height, width = frame.shape[:2]
            if not header_written:
                out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
                header_written = True
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def phone_photo(frame: np.ndarray, image_format: str = "JPEG") -> bytes:
    """`frame` (BGR) saved the way a phone saves a shot taken turned: the pixels 90 degrees
    counter-clockwise, with EXIF orientation 6 ("turn 90 degrees clockwise to view"), which a
    HEIF file carries as its rotation (`irot`). `image_format`: "JPEG", "WEBP" or "HEIF"."""
    from PIL import Image

    sideways = np.ascontiguousarray(np.rot90(frame[..., ::-1]))  # RGB, turned counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    buffer = io.BytesIO()
    image = Image.fromarray(sideways)
    if image_format == "HEIF":  # pillow-heif encodes; the app decodes with pi-heif
        import pillow_heif

        pillow_heif.from_pillow(image).save(buffer, quality=95, exif=exif.tobytes())
    else:
        image.save(buffer, image_format, exif=exif.tobytes(), quality=95)
    return buffer.getvalue()

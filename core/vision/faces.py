"""Find faces in frames (OpenCV Haar cascade) and turn them into model inputs.

Frames are BGR (OpenCV's order) or grayscale uint8 arrays. Nothing here writes to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.labels import FACE_SIZE

MAX_IMAGE_PIXELS = 40_000_000
MAX_UPLOAD_BYTES = 25_000_000


class ImageError(ValueError):
    """An upload or frame that is not a usable image; the message says what to do."""


@dataclass(frozen=True)
class FaceBox:
    """A face rectangle in frame pixels."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    def iou(self, other: FaceBox) -> float:
        """Intersection over union with another box (0 = apart, 1 = identical)."""
        x1, y1 = max(self.x, other.x), max(self.y, other.y)
        x2 = min(self.x + self.w, other.x + other.w)
        y2 = min(self.y + self.h, other.y + other.h)
        inter = max(0, x2 - x1) * max(0, y2 - y1)
        union = self.area + other.area - inter
        return inter / union if union else 0.0


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Grayscale uint8 view of a BGR, BGRA or already-gray frame."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    raise ImageError(f"Unsupported frame shape {frame.shape}")


def is_blank(gray: np.ndarray, threshold: float = 12.0) -> bool:
    """True for a black or flat frame (covered lens, camera still starting)."""
    sample = gray[::4, ::4]  # 1/16 of the pixels tells as much, 16x faster
    return float(sample.mean()) < threshold or float(sample.std()) < 4.0


class FaceDetector:
    """Haar-cascade face detector that works on a downscaled copy for speed.

    The defaults suit a 640x480 webcam (faces at least ~70 px); `for_photos()` looks harder.
    """

    def __init__(
        self,
        cascade_path: str | Path | None = None,
        detect_width: int = 320,
        min_face_fraction: float = 0.15,
        min_neighbors: int = 5,
        scale_factor: float = 1.15,
    ) -> None:
        """`detect_width`: detection runs on a copy this wide (speed); `min_face_fraction`:
        the smallest face, as a share of the frame's shorter side."""
        path = (
            Path(cascade_path)
            if cascade_path
            else (Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml")
        )
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(
                f"OpenCV could not load the face detector {path}. Reinstall "
                "opencv-python-headless 4.x (5.x wheels no longer ship the Haar cascades)."
            )
        self.detect_width = detect_width
        self.min_face_fraction = min_face_fraction
        self.min_neighbors = min_neighbors
        self.scale_factor = scale_factor

    @classmethod
    def for_photos(cls) -> FaceDetector:
        """Slower settings that also find small faces in group photos."""
        return cls(detect_width=960, min_face_fraction=0.04, scale_factor=1.08)

    def detect(self, frame: np.ndarray) -> list[FaceBox]:
        """Faces in `frame`, largest first, in the frame's own pixel coordinates."""
        gray = to_gray(frame)
        height, width = gray.shape
        scale = min(1.0, self.detect_width / width) if self.detect_width else 1.0
        small = (
            cv2.resize(
                gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
            )
            if scale < 1.0
            else gray
        )
        small = cv2.equalizeHist(small)
        min_side = max(24, round(min(small.shape) * self.min_face_fraction))
        found = self._cascade.detectMultiScale(
            small,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(min_side, min_side),
        )
        boxes = [
            FaceBox(round(x / scale), round(y / scale), round(w / scale), round(h / scale))
            for (x, y, w, h) in (found if len(found) else [])
        ]
        return sorted(boxes, key=lambda b: b.area, reverse=True)

    def detect_near(
        self, frame: np.ndarray, box: FaceBox, margin: float = 0.3, search_width: int = 48
    ) -> FaceBox | None:
        """The face closest to `box` within a window around it, or None (lost).

        Searches only a region `margin` larger than the box on each side, scaled so the face is
        about `search_width` pixels wide, at sizes 0.75-1.3x the box: 1-3 ms, where a
        full-frame search costs 10-30. Used to follow known faces between full detections.
        """
        gray = to_gray(frame)
        height, width = gray.shape
        dx, dy = round(box.w * margin), round(box.h * margin)
        x1, y1 = max(0, box.x - dx), max(0, box.y - dy)
        x2, y2 = min(width, box.x + box.w + dx), min(height, box.y + box.h + dy)
        if x2 - x1 < 24 or y2 - y1 < 24:
            return None
        scale = min(1.0, search_width / max(box.w, 1))
        roi = gray[y1:y2, x1:x2]
        if scale < 1.0:
            roi = cv2.resize(
                roi,
                (max(24, round(roi.shape[1] * scale)), max(24, round(roi.shape[0] * scale))),
                interpolation=cv2.INTER_AREA,
            )
        roi = cv2.equalizeHist(roi)
        low = max(24, round(box.w * scale * 0.75))
        high = max(low + 1, min(round(box.w * scale * 1.3), *roi.shape[:2]))
        found = self._cascade.detectMultiScale(
            roi,
            scaleFactor=1.1,
            minNeighbors=max(2, self.min_neighbors - 2),
            minSize=(low, low),
            maxSize=(high, high),
        )
        candidates = [
            FaceBox(
                x1 + round(x / scale), y1 + round(y / scale), round(w / scale), round(h / scale)
            )
            for (x, y, w, h) in (found if len(found) else [])
        ]
        best = max(candidates, key=box.iou, default=None)
        return best if best is not None and best.iou(box) > 0.2 else None


def crop_face(gray: np.ndarray, box: FaceBox, pad: float = 0.08) -> np.ndarray:
    """The face region grown by `pad` on each side, clipped to the frame (edge faces work)."""
    height, width = gray.shape[:2]
    dx, dy = round(box.w * pad), round(box.h * pad)
    x1, y1 = max(0, box.x - dx), max(0, box.y - dy)
    x2, y2 = min(width, box.x + box.w + dx), min(height, box.y + box.h + dy)
    if x2 <= x1 or y2 <= y1:
        raise ImageError("face box lies outside the frame")
    return gray[y1:y2, x1:x2]


def prepare_face(gray: np.ndarray, box: FaceBox, pad: float = 0.08) -> np.ndarray:
    """A 48x48 uint8 grayscale face, as FER2013 models expect."""
    crop = crop_face(gray, box, pad)
    return cv2.resize(crop, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)


def decode_image(data: bytes) -> np.ndarray:
    """Decode uploaded bytes (jpg/png/webp/...) to a BGR array, or raise ImageError."""
    if not data:
        raise ImageError("The file is empty. Upload a JPG, PNG or WebP photo.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError("The file is over 25 MB; upload a smaller photo.")
    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(
            "This file is not an image we can read (or it is damaged). "
            "Upload a JPG, PNG or WebP photo."
        )
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise ImageError("The image is too large; upload one under 40 megapixels.")
    return image


def fit_width(image: np.ndarray, max_width: int = 1280) -> np.ndarray:
    """Downscale wide photos so detection and display stay fast."""
    height, width = image.shape[:2]
    if width <= max_width:
        return image
    scale = max_width / width
    return cv2.resize(image, (max_width, round(height * scale)), interpolation=cv2.INTER_AREA)

"""Find faces in frames (BlazeFace DNN, Haar cascade fallback) and turn them into model inputs.

Frames are BGR (OpenCV's order) or grayscale uint8 arrays. Nothing here writes to disk.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.labels import FACE_SIZE

MAX_IMAGE_PIXELS = 40_000_000
MAX_UPLOAD_BYTES = 25_000_000

_log = logging.getLogger(__name__)


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
    """Face detector: MediaPipe's BlazeFace (a small DNN, on the CPU) with OpenCV's Haar cascade
    as the fallback when BlazeFace cannot load (package or interpreter missing).

    `backend` says which one runs ("blazeface" or "haar"); `fallback_reason` why Haar runs when
    BlazeFace was asked for. The defaults suit a 640x480 webcam; `for_photos()` looks harder.
    """

    def __init__(
        self,
        cascade_path: str | Path | None = None,
        detect_width: int = 320,
        min_face_fraction: float = 0.15,
        min_neighbors: int = 5,
        scale_factor: float = 1.15,
        *,
        backend: str = "auto",
        model: str = "back",
        model_path: str | Path | None = None,
        min_score: float | None = None,
        tiles: int = 0,
        runtimes: tuple[str, ...] = ("litert", "opencv"),
    ) -> None:
        """Haar settings: `detect_width`: detection runs on a copy this wide (speed);
        `min_face_fraction`: the smallest face, as a share of the frame's shorter side.

        BlazeFace settings: `backend` "auto" (BlazeFace, else Haar), "blazeface" (raise if it
        cannot load) or "haar"; `model` "back" (256 px input), "front" (128 px, faces close to
        the camera) or "full" (192 px, full range); `model_path` another copy of that model's
        `.tflite`; `min_score` the lowest confidence kept (default per model); `tiles` > 1 also
        searches overlapping tiles, `tiles` across the shorter side, for small faces in photos;
        `runtimes` the interpreters to try, in order ("litert", then OpenCV's DNN "opencv").
        """
        if backend not in ("auto", "blazeface", "haar"):
            raise ValueError(f"backend must be auto, blazeface or haar, not {backend!r}")
        self.detect_width = detect_width
        self.min_face_fraction = min_face_fraction
        self.min_neighbors = min_neighbors
        self.scale_factor = scale_factor
        self.min_score = min_score
        self.tiles = tiles
        self.fallback_reason: str | None = None
        self._net = self._near_net = None
        if backend != "haar":
            from core.vision.blazeface import BlazeFace, BlazeFaceUnavailable

            try:
                self._net = BlazeFace.load(model, model_path, runtimes)
                # Following a known face searches a window the face fills: the short-range
                # model is made for that, and costs a third of the 256 px one.
                self._near_net = self._net
                if model_path is None and model != "front":
                    with contextlib.suppress(BlazeFaceUnavailable):
                        self._near_net = BlazeFace.load("front", runtimes=(self._net.runtime,))
            except BlazeFaceUnavailable as error:
                if backend == "blazeface":
                    raise
                self.fallback_reason = str(error)
                _log.warning("BlazeFace face detector unavailable (%s); using Haar.", error)
        self.backend = "blazeface" if self._net is not None else "haar"
        self.runtime = self._net.runtime if self._net is not None else "opencv-haar"
        self._cascade = self._load_cascade(cascade_path) if self._net is None else None
        # One cascade serves every stream's thread, and its detectMultiScale is not thread-safe
        # (it mutates the classifier's internal buffers: opencv/opencv#4287).
        self._cascade_lock = threading.Lock()

    @staticmethod
    def _load_cascade(cascade_path: str | Path | None) -> cv2.CascadeClassifier:
        path = (
            Path(cascade_path)
            if cascade_path
            else (Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml")
        )
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise RuntimeError(
                f"OpenCV could not load the face detector {path}. Reinstall "
                "opencv-python-headless 4.x (5.x wheels no longer ship the Haar cascades)."
            )
        return cascade

    def _haar(self, image: np.ndarray, **options) -> np.ndarray:
        """The cascade's detections in `image`, one thread at a time."""
        with self._cascade_lock:
            return self._cascade.detectMultiScale(image, **options)

    @classmethod
    def for_photos(cls, **options) -> FaceDetector:
        """Slower settings that also find small faces in group photos."""
        settings = {"detect_width": 960, "min_face_fraction": 0.04, "scale_factor": 1.08}
        return cls(**{**settings, "tiles": 3, **options})

    def detect(self, frame: np.ndarray) -> list[FaceBox]:
        """Faces in `frame`, largest first, in the frame's own pixel coordinates."""
        if self._net is not None:
            return self._detect_dnn(frame)
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
        found = self._haar(
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

    def _detect_dnn(self, frame: np.ndarray) -> list[FaceBox]:
        _check_frame(frame)
        height, width = frame.shape[:2]
        boxes, scores = [], []
        for x1, y1, x2, y2 in _tiles(width, height, self.tiles, self._net.spec.size):
            part, part_scores, _ = self._net.raw(frame[y1:y2, x1:x2])
            part = part + np.array([x1, y1, x1, y1], np.float32)
            if (x1, y1, x2, y2) != (0, 0, width, height):
                # A face cut by a tile's inner edge is found whole in a neighbour (or the
                # full frame): drop the cut one rather than average it in.
                slack = 0.1 * (part[:, 2] - part[:, 0])
                inside = (
                    ((part[:, 0] >= x1 - slack) | (x1 == 0))
                    & ((part[:, 1] >= y1 - slack) | (y1 == 0))
                    & ((part[:, 2] <= x2 + slack) | (x2 == width))
                    & ((part[:, 3] <= y2 + slack) | (y2 == height))
                )
                # Big faces are the whole-frame pass's job; big boxes in a tile are mostly
                # textures (crowds, fur) that the model, looking closer, takes for a face.
                small = part[:, 2] - part[:, 0] <= TILE_MAX_FACE * (x2 - x1)
                sure = part_scores >= max(TILE_MIN_SCORE, self.min_score or 0.0)
                part, part_scores = part[inside & small & sure], part_scores[inside & small & sure]
            boxes.append(part)
            scores.append(part_scores)
        return self._finish(np.concatenate(boxes), np.concatenate(scores), self._net, frame)

    def _finish(self, boxes, scores, net, frame) -> list[FaceBox]:
        """Threshold, merge (weighted NMS), reframe like FER2013's crops, clip; largest first."""
        from core.vision.blazeface import weighted_nms

        keep = scores >= (net.spec.min_score if self.min_score is None else self.min_score)
        height, width = frame.shape[:2]
        faces = []
        for (x1, y1, x2, y2), _ in weighted_nms(boxes[keep], scores[keep]):
            box = _reframe(x1, y1, x2 - x1, y2 - y1, width, height)
            if box is not None:
                faces.append(box)
        return sorted(faces, key=lambda b: b.area, reverse=True)

    def detect_near(
        self, frame: np.ndarray, box: FaceBox, margin: float = 0.3, search_width: int = 48
    ) -> FaceBox | None:
        """The face closest to `box` within a window around it, or None (lost).

        Searches only a square region `margin` larger than the box on each side (BlazeFace:
        one pass of its 128 px short-range model, ~1-1.5 ms; Haar: scaled so the face is about
        `search_width` pixels wide, at sizes 0.75-1.3x the box, 2-3 ms), where a full-frame
        search costs 5-8 ms (BlazeFace) or 10-30 (Haar). Used to follow known faces between
        full detections.
        """
        if self._net is not None:
            return self._detect_near_dnn(frame, box, margin)
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
        found = self._haar(
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

    def _detect_near_dnn(self, frame: np.ndarray, box: FaceBox, margin: float) -> FaceBox | None:
        _check_frame(frame)
        height, width = frame.shape[:2]
        side = max(box.w, box.h) * (1 + 2 * margin)
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        x1, y1 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
        x2, y2 = min(width, round(cx + side / 2)), min(height, round(cy + side / 2))
        if x2 - x1 < 24 or y2 - y1 < 24:
            return None
        boxes, scores, _ = self._near_net.raw(frame[y1:y2, x1:x2])
        boxes = boxes + np.array([x1, y1, x1, y1], np.float32)
        candidates = self._finish(boxes, scores, self._near_net, frame)
        best = max(candidates, key=box.iou, default=None)
        return best if best is not None and best.iou(box) > 0.2 else None


# BlazeFace's box runs from the brows to the chin and sits low. On FER2013 faces pasted into
# scenes (296 of PublicTest's first 300), the FER2013 crop the emotion models learnt from is a
# median 1.17x BlazeFace's box (IQR 1.07-1.30) and centred 0.1 box heights higher: so the box
# is raised by that, and kept at its size, since `prepare_face` pads it 8% a side (1.16x).
# Haar's box is 0.96x the FER2013 crop there; on skimage's astronaut it is 0.91x BlazeFace's.
# Between 1.0 and 1.1x the shipped model's accuracy on those scenes did not change beyond noise
# (n=260 faces both detectors found); at 1.2x it fell 5 points.
REFRAME_SCALE = 1.0
REFRAME_RAISE = 0.1


def _reframe(x: float, y: float, w: float, h: float, width: int, height: int) -> FaceBox | None:
    """A BlazeFace box reframed like FER2013's crops and clipped to the frame (None if empty)."""
    side = max(w, h) * REFRAME_SCALE
    cx, cy = x + w / 2, y + h / 2 - REFRAME_RAISE * h
    x1, y1 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    x2, y2 = min(width, round(cx + side / 2)), min(height, round(cy + side / 2))
    if x2 - x1 < 8 or y2 - y1 < 8:
        return None
    return FaceBox(x1, y1, x2 - x1, y2 - y1)


# The largest face (share of the tile's side) a tile may report.
TILE_MAX_FACE = 0.4
# Tiles see more texture up close: a face found only in a tile needs this score.
TILE_MIN_SCORE = 0.65


def _tiles(width: int, height: int, tiles: int, least: int) -> list[tuple[int, int, int, int]]:
    """The whole frame, plus (tiles > 1) overlapping squares, `tiles` across the shorter side
    but never under `least` pixels (the model's input: tiles are not upscaled)."""
    regions = [(0, 0, width, height)]
    if tiles > 1:
        side = max(least, round(min(width, height) / tiles * 1.25))
        if side >= max(width, height):
            return regions
        if min(width, height) < least:  # a thin strip: squares would be smaller than the input
            return regions
        for y in _starts(height, side):
            for x in _starts(width, side):
                regions.append((x, y, x + side, y + side))
    return regions


def _starts(length: int, side: int) -> list[int]:
    """Evenly spaced tile origins covering `length`, neighbours overlapping ~20% or more."""
    if side >= length:
        return [0]
    count = int(np.ceil((length - side) / (0.8 * side))) + 1
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


def _check_frame(frame: np.ndarray) -> None:
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (3, 4))):
        raise ImageError(f"Unsupported frame shape {frame.shape}")


def _square_at_edges(box: FaceBox, width: int, height: int) -> tuple[int, int, int, int]:
    """`box` as (x1, y1, x2, y2), squared out past the frame edge it was clipped at: a face
    cut by the edge keeps its proportions instead of being stretched to the model's square."""
    x1, y1, x2, y2 = box.x, box.y, box.x + box.w, box.y + box.h
    short = box.h - box.w
    if short > 0 and x1 <= 0 < width - x2:
        x1 -= short
    elif short > 0 and x2 >= width > x1 > 0:
        x2 += short
    elif short < 0 and y1 <= 0 < height - y2:
        y1 += short
    elif short < 0 and y2 >= height > y1 > 0:
        y2 -= short
    return x1, y1, x2, y2


def crop_face(gray: np.ndarray, box: FaceBox, pad: float = 0.08) -> np.ndarray:
    """The face region grown by `pad` on each side; where it runs past the frame (a face at
    the edge) the edge pixels are repeated, so the crop keeps the face's proportions."""
    height, width = gray.shape[:2]
    x1, y1, x2, y2 = _square_at_edges(box, width, height)
    dx, dy = round((x2 - x1) * pad), round((y2 - y1) * pad)
    x1, y1, x2, y2 = x1 - dx, y1 - dy, x2 + dx, y2 + dy
    inside = gray[max(0, y1) : min(height, y2), max(0, x1) : min(width, x2)]
    if inside.size == 0:
        raise ImageError("face box lies outside the frame")
    return cv2.copyMakeBorder(
        inside,
        max(0, -y1),
        max(0, y2 - height),
        max(0, -x1),
        max(0, x2 - width),
        cv2.BORDER_REPLICATE,
    )


def prepare_face(gray: np.ndarray, box: FaceBox, pad: float = 0.08) -> np.ndarray:
    """A 48x48 uint8 grayscale face, as FER2013 models expect."""
    crop = crop_face(gray, box, pad)
    return cv2.resize(crop, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)


UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "heic", "heif")  # the photo uploaders' extensions
UPLOAD_FORMATS = "JPG, PNG, WebP or HEIC"
UNREADABLE = (
    f"This file is not an image we can read (or it is damaged). Upload a {UPLOAD_FORMATS} photo."
)
# ISO base media brands of HEIF stills (iPhone photos are "heic"); OpenCV's wheels cannot read them.
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


@functools.cache
def _heif_opener() -> bool:
    """Teach Pillow to open HEIF (pi-heif) once; False where pi-heif is not installed."""
    try:
        import pi_heif
    except ImportError:
        return False
    pi_heif.register_heif_opener()
    return True


def is_heif(data: bytes) -> bool:
    """Whether `data` starts like a HEIF still image (an `ftyp` box with a HEIF brand)."""
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError("The image is too large; upload one under 40 megapixels.")


def _check_declared_size(data: bytes) -> None:
    """ImageError unless Pillow reads the photo's header and it declares at most
    MAX_IMAGE_PIXELS: a header Pillow cannot read (a format we do not take, or a damaged one
    OpenCV would still decode) could hide gigapixels in a small file."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as header:  # reads the header only
            width, height = header.size
    except Image.DecompressionBombError:
        width, height = MAX_IMAGE_PIXELS + 1, 1
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(UNREADABLE) from error
    _check_pixels(width, height)


def _decode_heif(data: bytes) -> np.ndarray | None:
    """A HEIF photo as BGR, upright (libheif applies its rotation and mirror), or None."""
    if not _heif_opener():
        return None
    from PIL import Image

    unreadable = (OSError, ValueError, RuntimeError, Image.DecompressionBombError)
    try:
        image = Image.open(io.BytesIO(data))
    except unreadable:
        return None
    with image:
        _check_pixels(image.width, image.height)  # before decoding the pixels
        try:
            rgb = np.asarray(image.convert("RGB"))
        except unreadable:
            return None
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def decode_image(data: bytes) -> np.ndarray:
    """Decode uploaded bytes (jpg/png/webp/heic/...) to an upright BGR array (EXIF orientation
    applied), or raise ImageError."""
    if not data:
        raise ImageError(f"The file is empty. Upload a {UPLOAD_FORMATS} photo.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError("The file is over 25 MB; upload a smaller photo.")
    if is_heif(data):
        image = _decode_heif(data)
    else:
        _check_declared_size(data)  # a small file can declare gigapixels: refuse before decoding
        try:
            image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as error:  # e.g. over OpenCV's own pixel cap (see core/__init__.py)
            raise ImageError(UNREADABLE) from error
    if image is None:
        raise ImageError(UNREADABLE)
    _check_pixels(image.shape[1], image.shape[0])
    return image


def fit_width(image: np.ndarray, max_width: int = 1280) -> np.ndarray:
    """Downscale large photos (their longer side to `max_width`) so detection and display
    stay fast; a tall panorama is bounded like a wide one."""
    height, width = image.shape[:2]
    if max(width, height) <= max_width:
        return image
    scale = max_width / max(width, height)
    # a strip 2,560x longer than it is wide: still 1 pixel across
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

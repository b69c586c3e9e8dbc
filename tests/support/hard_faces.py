"""Harder camera scenes from real FER2013 faces: turned, tilted, hand-covered, small, dark, groups.

Each builder returns `(frame, truth)`: a 640x480 BGR frame and the true face boxes (from where
the faces were pasted). Turned faces are the flat FER2013 photo rotated about its vertical axis
and seen in perspective (a stand-in for a turned head); the hand is a skin-coloured palm and
fingers drawn over the mouth. Used by tests/test_faces.py and benchmarks/face_detection.py.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from core.vision.faces import FaceBox
from tests.support.scenes import HEIGHT, WIDTH, background

Scene = tuple[np.ndarray, list[FaceBox]]


def _paste_masked(frame: np.ndarray, patch: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Blend a BGR patch into `frame` at (x, y) where `mask` (0..1 floats) is set; clipped."""
    h, w = patch.shape[:2]
    x1, y1 = max(0, x), max(0, y)
    x2, y2 = min(frame.shape[1], x + w), min(frame.shape[0], y + h)
    if x2 <= x1 or y2 <= y1:
        return
    region = frame[y1:y2, x1:x2].astype(np.float32)
    p = patch[y1 - y : y2 - y, x1 - x : x2 - x].astype(np.float32)
    m = mask[y1 - y : y2 - y, x1 - x : x2 - x, None]
    frame[y1:y2, x1:x2] = np.clip(region * (1 - m) + p * m, 0, 255).astype(np.uint8)


def turned_face(face: np.ndarray, size: int, yaw: float) -> tuple[np.ndarray, np.ndarray, FaceBox]:
    """The face photo rotated `yaw` degrees about its vertical axis, in perspective.

    Returns the BGR patch, its mask and the face's bounding box inside the patch."""
    angle = np.radians(yaw)
    distance = 2.5  # camera distance in half-face widths: a near side visibly taller
    corners = []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x, z = sx * np.cos(angle), sx * np.sin(angle)
        corners.append((x * distance / (distance + z), sy * distance / (distance + z)))
    dst = (np.array(corners, np.float32) + 1) / 2 * size
    src = np.array([(0, 0), (size, 0), (size, size), (0, size)], np.float32)
    big = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    matrix = cv2.getPerspectiveTransform(src, dst)
    patch = cv2.warpPerspective(big, matrix, (size, size), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((size, size), np.float32), matrix, (size, size))
    x1, y1 = np.floor(dst.min(0)).astype(int)
    x2, y2 = np.ceil(dst.max(0)).astype(int)
    return cv2.cvtColor(patch, cv2.COLOR_GRAY2BGR), mask, FaceBox(x1, y1, x2 - x1, y2 - y1)


def tilted_face(face: np.ndarray, size: int, roll: float) -> tuple[np.ndarray, np.ndarray]:
    """The face rotated `roll` degrees in the picture plane (a tilted head), and its mask."""
    big = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), roll, 1.0)
    patch = cv2.warpAffine(big, matrix, (size, size), borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((size, size), np.float32)
    cv2.circle(mask, (size // 2, size // 2), size // 2, 1.0, -1)  # the face, not the corners
    return cv2.cvtColor(patch, cv2.COLOR_GRAY2BGR), cv2.GaussianBlur(mask, (0, 0), size / 40)


def draw_hand(frame: np.ndarray, box: FaceBox, rng: np.random.Generator) -> None:
    """A skin-coloured hand (palm and four fingers) over the mouth and chin of the face at `box`."""
    s = box.w
    skin = np.array([rng.uniform(110, 150), rng.uniform(140, 175), rng.uniform(185, 225)])
    layer = np.zeros(frame.shape[:2], np.float32)
    cx, cy = box.x + s * rng.uniform(0.45, 0.6), box.y + s * 0.95
    cv2.ellipse(layer, (round(cx), round(cy)), (round(s * 0.3), round(s * 0.24)), 0, 0, 360, 1, -1)
    tilt = rng.uniform(-25, 25)
    for k in range(4):
        fx = cx + s * (k - 1.5) * 0.11
        length = s * (0.24 + 0.05 * (1.5 - abs(k - 1.5)))
        tip = (fx + np.sin(np.radians(tilt)) * length, cy - s * 0.12 - length)
        centre = (round((fx + tip[0]) / 2), round((cy - s * 0.1 + tip[1]) / 2))
        cv2.ellipse(
            layer, centre, (round(s * 0.05), round(length / 2 + s * 0.06)), tilt, 0, 360, 1, -1
        )
    layer = cv2.GaussianBlur(layer, (0, 0), max(1.0, s / 90))
    shade = 0.85 + 0.25 * (np.indices(frame.shape[:2])[0] - box.y) / max(1, 2 * s)
    colour = np.clip(skin[None, None, :] * np.clip(shade, 0.7, 1.15)[..., None], 0, 255)
    blended = frame * (1 - layer[..., None]) + colour * layer[..., None]
    frame[:] = np.clip(blended, 0, 255).astype(np.uint8)


def _place(rng: np.random.Generator, size: int) -> tuple[int, int]:
    return int(rng.integers(10, WIDTH - size - 10)), int(rng.integers(10, HEIGHT - size - 10))


def frontal(faces: list[np.ndarray], seed: int) -> Scene:
    rng = np.random.default_rng(seed)
    frame = background(seed)
    size = int(rng.integers(150, 230))
    x, y = _place(rng, size)
    patch = cv2.cvtColor(cv2.resize(faces[0], (size, size), interpolation=cv2.INTER_CUBIC),
                         cv2.COLOR_GRAY2BGR)  # fmt: skip
    _paste_masked(frame, patch, np.ones((size, size), np.float32), x, y)
    return frame, [FaceBox(x, y, size, size)]


def turned(faces: list[np.ndarray], seed: int, low: float = 30, high: float = 45) -> Scene:
    rng = np.random.default_rng(seed)
    frame = background(seed)
    size = int(rng.integers(160, 230))
    yaw = rng.uniform(low, high) * rng.choice([-1, 1])
    patch, mask, inner = turned_face(faces[0], size, yaw)
    x, y = _place(rng, size)
    _paste_masked(frame, patch, mask, x, y)
    return frame, [FaceBox(x + inner.x, y + inner.y, inner.w, inner.h)]


def tilted(faces: list[np.ndarray], seed: int, low: float = 20, high: float = 35) -> Scene:
    rng = np.random.default_rng(seed)
    frame = background(seed)
    size = int(rng.integers(160, 230))
    patch, mask = tilted_face(faces[0], size, rng.uniform(low, high) * rng.choice([-1, 1]))
    x, y = _place(rng, size)
    _paste_masked(frame, patch, mask, x, y)
    return frame, [FaceBox(x, y, size, size)]


def occluded(faces: list[np.ndarray], seed: int) -> Scene:
    frame, truth = frontal(faces, seed)
    draw_hand(frame, truth[0], np.random.default_rng(seed + 1))
    return frame, truth


def small(faces: list[np.ndarray], seed: int) -> Scene:
    rng = np.random.default_rng(seed)
    frame = background(seed)
    size = int(rng.integers(48, 76))
    x, y = _place(rng, size)
    patch = cv2.cvtColor(cv2.resize(faces[0], (size, size), interpolation=cv2.INTER_AREA),
                         cv2.COLOR_GRAY2BGR)  # fmt: skip
    _paste_masked(frame, patch, np.ones((size, size), np.float32), x, y)
    return frame, [FaceBox(x, y, size, size)]


def dark(faces: list[np.ndarray], seed: int) -> Scene:
    """A dim room: the whole frame at 20-35% brightness with sensor noise."""
    frame, truth = frontal(faces, seed)
    rng = np.random.default_rng(seed + 2)
    dim = frame.astype(np.float32) * rng.uniform(0.2, 0.35) + rng.normal(0, 3, frame.shape)
    return np.clip(dim, 0, 255).astype(np.uint8), truth


def several(faces: list[np.ndarray], seed: int) -> Scene:
    """Three or four faces of different sizes side by side."""
    rng = np.random.default_rng(seed)
    frame = background(seed)
    count = min(len(faces), int(rng.integers(3, 5)))
    step = WIDTH // count
    truth = []
    for i in range(count):
        size = int(rng.integers(80, min(step - 10, 170)))
        x = i * step + int(rng.integers(0, step - size))
        y = int(rng.integers(20, HEIGHT - size - 20))
        patch = cv2.cvtColor(cv2.resize(faces[i], (size, size), interpolation=cv2.INTER_CUBIC),
                             cv2.COLOR_GRAY2BGR)  # fmt: skip
        _paste_masked(frame, patch, np.ones((size, size), np.float32), x, y)
        truth.append(FaceBox(x, y, size, size))
    return frame, truth


def empty(faces: list[np.ndarray], seed: int) -> Scene:
    """No face: a backdrop, or (odd seeds) coloured noise."""
    if seed % 2:
        noise = np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3))
        return noise.astype(np.uint8), []
    return background(seed), []


VARIANTS: dict[str, tuple[Callable[..., Scene], int]] = {
    # name: (builder, faces it needs)
    "frontal": (frontal, 1),
    "turned": (turned, 1),
    "tilted": (tilted, 1),
    "occluded": (occluded, 1),
    "small": (small, 1),
    "dark": (dark, 1),
    "several": (several, 4),
    "empty": (empty, 0),
}


def build(variant: str, faces: np.ndarray, index: int) -> Scene:
    """Scene number `index` of `variant`, using faces from `faces` (a FER2013 array)."""
    builder, needed = VARIANTS[variant]
    offset = (index * 4 + sum(map(ord, variant))) % max(1, len(faces) - needed)
    return builder([faces[offset + k] for k in range(needed)], 1000 + index)

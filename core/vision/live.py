"""The live pipeline: frame -> faces -> tracked ids -> smoothed emotions -> annotated frame.

`LiveAnalyzer.process` runs in streamlit-webrtc's worker thread; the page reads results with
`snapshot()` from its own thread. All shared state sits behind one lock. Frames stay in memory.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from core.emotion.model import EmotionModel, EmotionSmoother
from core.labels import EMOTIONS
from core.palette import bgr_of
from core.vision.faces import FaceBox, FaceDetector, ImageError, is_blank, prepare_face, to_gray
from core.vision.tracking import FaceTracker


@dataclass(frozen=True)
class FaceResult:
    """One tracked face in the latest frame."""

    face_id: int
    box: FaceBox
    probabilities: np.ndarray  # smoothed, FER2013 order

    @property
    def label(self) -> str:
        return EMOTIONS[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))


@dataclass
class LiveSnapshot:
    """What the page shows: a copy, safe to read while the worker keeps going."""

    faces: list[FaceResult]
    status: str
    frames_processed: int
    fps: float
    timeline: list[tuple[float, np.ndarray]]
    window_probabilities: np.ndarray | None

    @property
    def dominant_emotion(self) -> str | None:
        if self.window_probabilities is None:
            return None
        return EMOTIONS[int(np.argmax(self.window_probabilities))]


@dataclass
class StageTimes:
    """Milliseconds spent per stage on the last processed frame."""

    detect: float = 0.0
    preprocess: float = 0.0
    infer: float = 0.0
    total: float = 0.0


@dataclass
class LiveAnalyzer:
    """Stateful per-stream analyzer. Create one per browser session.

    A full-frame face search runs every `detect_every` frames (and whenever no face is being
    followed); in between, each known face is re-found in a small window around where it was
    (`FaceDetector.detect_near`), which is ~5-10x cheaper. Every followed face is classified on
    every frame, all faces in one batch.
    """

    model: EmotionModel
    detector: FaceDetector = field(default_factory=FaceDetector)
    detect_every: int = 4
    alpha: float = 0.35
    window_seconds: float = 3.0
    timeline_seconds: float = 600.0
    timeline_interval: float = 0.25
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._smoother = EmotionSmoother(self.alpha)
        self._tracker = FaceTracker()
        self._faces: list[FaceResult] = []
        self._status = "Waiting for the camera…"
        self._frames = 0
        self._frame_times: deque[float] = deque(maxlen=30)
        self._timeline: deque[tuple[float, np.ndarray]] = deque(
            maxlen=int(self.timeline_seconds / self.timeline_interval)
        )
        self._since_full_search = 0
        self._last_frame: np.ndarray | None = None
        self.last_times = StageTimes()

    def analyze(self, frame: np.ndarray) -> list[FaceResult]:
        """Detect, track and classify every face in a BGR frame; updates shared state."""
        start = time.perf_counter()
        times = StageTimes()
        gray = to_gray(frame)
        if is_blank(gray):
            self._publish(
                [],
                "The picture is dark or blank: is the lens covered, or the room "
                "too dark? Turn towards a light.",
                start,
                times,
            )
            return []
        boxes = self._find_faces(frame)  # in colour: BlazeFace finds more faces than in gray
        times.detect = (time.perf_counter() - start) * 1000
        results: list[FaceResult] = []
        if boxes:
            # One box per face for everything: the tracked (smoothed) box is both the crop the
            # model reads and the box drawn on the frame.
            ids = self._tracker.update(boxes)
            tracked = [self._tracker.box_of(face_id) for face_id in ids]
            t0 = time.perf_counter()
            crops = np.stack([prepare_face(gray, box) for box in tracked])
            times.preprocess = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            probabilities = self.model.predict(crops)
            times.infer = (time.perf_counter() - t0) * 1000
            for face_id, box, probs in zip(ids, tracked, probabilities, strict=True):
                results.append(FaceResult(face_id, box, self._smoother.update(face_id, probs)))
        else:
            self._tracker.update([])
        self._smoother.step()
        if not results:
            status = (
                "No face found: look at the camera, face lit and uncovered, close enough "
                "to fill about a fifth of the picture."
            )
        elif len(results) == 1:
            status = "1 face"
        else:
            status = f"{len(results)} faces: the largest (#{results[0].face_id}) picks the music"
        self._publish(results, status, start, times)
        return results

    def _find_faces(self, frame: np.ndarray) -> list[FaceBox]:
        """Full search every `detect_every` frames or when nothing is followed; else local."""
        known = self._tracker.recent_boxes()
        if not known or self._since_full_search + 1 >= self.detect_every:
            self._since_full_search = 0
            return self.detector.detect(frame)
        self._since_full_search += 1
        boxes: list[FaceBox] = []
        for box in known:
            # A face the local search misses (motion blur, a turned head) coasts on its last
            # box until the next full search, at most `detect_every - 1` frames away.
            found = self.detector.detect_near(frame, box) or box
            if all(found.iou(b) < 0.5 for b in boxes):
                boxes.append(found)  # two tracks that collapsed onto one face count once
        return sorted(boxes, key=lambda b: b.area, reverse=True)

    def _publish(
        self, results: list[FaceResult], status: str, start: float, times: StageTimes
    ) -> None:
        now = self.clock()
        times.total = (time.perf_counter() - start) * 1000
        with self._lock:
            self.last_times = times
            self._faces = results
            self._status = status
            self._frames += 1
            self._frame_times.append(now)
            if results and (
                not self._timeline or now - self._timeline[-1][0] >= self.timeline_interval
            ):
                self._timeline.append((now, results[0].probabilities.copy()))

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Analyze and return an annotated copy; a bad frame is returned as it came."""
        try:
            results = self.analyze(frame)
        except (ImageError, cv2.error, ValueError) as error:
            with self._lock:
                self._status = f"Skipped a frame the camera sent damaged ({error})."
            return frame
        annotated = annotate(frame, results)
        with self._lock:
            self._last_frame = annotated
        return annotated

    def last_annotated_frame(self) -> np.ndarray | None:
        """The latest annotated frame (kept in memory only, for the snapshot button)."""
        with self._lock:
            return None if self._last_frame is None else self._last_frame.copy()

    def snapshot(self) -> LiveSnapshot:
        """A consistent copy of the latest results for the page."""
        with self._lock:
            now = self.clock()
            times = list(self._frame_times)
            fps = (
                (len(times) - 1) / (times[-1] - times[0])
                if len(times) > 1 and times[-1] > times[0]
                else 0.0
            )
            recent = [p for t, p in self._timeline if now - t <= self.window_seconds]
            window = np.mean(recent, axis=0) if recent else None
            return LiveSnapshot(
                list(self._faces),
                self._status,
                self._frames,
                fps,
                list(self._timeline),
                window,
            )

    def reset(self) -> None:
        """Forget faces, timeline and counters (stream stopped)."""
        with self._lock:
            self._smoother.reset()
            self._tracker.reset()
            self._since_full_search = 0
            self._faces = []
            self._timeline.clear()
            self._frame_times.clear()
            self._frames = 0
            self._last_frame = None
            self._status = "Stopped."


def annotate(frame: np.ndarray, results: list[FaceResult]) -> np.ndarray:
    """Boxes and 'emotion 87%' labels drawn on a copy of the frame."""
    out = frame.copy()
    thickness = max(2, round(min(out.shape[:2]) / 240))
    for face in results:
        color = bgr_of(face.label)
        box = face.box
        cv2.rectangle(out, (box.x, box.y), (box.x + box.w, box.y + box.h), color, thickness)
        text = f"#{face.face_id} {face.label} {face.confidence:.0%}"
        scale = max(0.5, box.w / 260)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        y = box.y - 6 if box.y - th - base - 6 > 0 else box.y + box.h + th + 6
        cv2.rectangle(out, (box.x, y - th - base), (box.x + tw + 6, y + base), color, -1)
        cv2.putText(
            out, text, (box.x + 3, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1, cv2.LINE_AA
        )
    return out


def make_frame_callback(analyzer: LiveAnalyzer) -> Callable:
    """streamlit-webrtc's `video_frame_callback`: av.VideoFrame in, annotated frame out."""
    import av

    def callback(frame: av.VideoFrame) -> av.VideoFrame:
        image = frame.to_ndarray(format="bgr24")
        annotated = analyzer.process(image)
        out = av.VideoFrame.from_ndarray(annotated, format="bgr24")
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out

    return callback


def analyze_still(
    image: np.ndarray, model: EmotionModel, detector: FaceDetector
) -> list[FaceResult]:
    """Every face of one photo, largest first, numbered 1..n (no smoothing, no tracking)."""
    gray = to_gray(image)
    boxes = detector.detect(image)
    if not boxes:
        return []
    probabilities = model.predict(np.stack([prepare_face(gray, box) for box in boxes]))
    return [
        FaceResult(i + 1, box, probs)
        for i, (box, probs) in enumerate(zip(boxes, probabilities, strict=True))
    ]

"""The live pipeline: frame -> faces -> tracked ids -> smoothed emotions -> annotated frame.

`LiveAnalyzer.process` runs in streamlit-webrtc's worker thread; the page reads results with
`snapshot()` from its own thread. All shared state sits behind one lock. Frames stay in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import cv2
import numpy as np

from core.emotion.model import EmotionModel, EmotionSmoother
from core.labels import EMOTIONS
from core.palette import bgr_of
from core.vision.faces import FaceBox, FaceDetector, ImageError, is_blank, prepare_face, to_gray
from core.vision.tracking import FaceTracker

_log = logging.getLogger(__name__)


@dataclass
class SettledMood:
    """The emotion the live songs follow: another takes over only once it has led the recent
    window by `margin` for `hold_seconds`, so two emotions near a tie (common: neutral and
    sad) do not swap the songs, and the mood history, every second."""

    margin: float = 0.05
    hold_seconds: float = 2.0
    emotion: str | None = None
    _challenger: str | None = None
    _since: float = 0.0

    def update(self, window: np.ndarray, now: float) -> str:
        """The settled emotion after the window of probabilities seen at time `now` (s)."""
        top = int(np.argmax(window))
        leader = EMOTIONS[top]
        if self.emotion is None:
            self.emotion = leader
        elif leader == self.emotion or window[top] - window[EMOTIONS.index(self.emotion)] < (
            self.margin
        ):
            self._challenger = None
        elif leader != self._challenger:
            self._challenger, self._since = leader, now
        elif now - self._since >= self.hold_seconds:
            self.emotion, self._challenger = leader, None
        return self.emotion

    def follow(self, window: np.ndarray, now: float, streaming: bool) -> str:
        """`update` while a stream plays; stopped, the settled emotion stays as it was (the
        stopped stream's last window is no new reading: settling it afresh could swap the
        songs, and record a mood, at the press of Stop)."""
        if streaming or self.emotion is None:
            return self.update(window, now)
        return self.emotion


# A face takes the music from the one that has it only when this many times larger (area).
LEAD_SWITCH_AREA = 1.5


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


class StreamBudget:
    """The analysis the live streams of one server process share, so more viewers degrade.

    Every stream asks `admit` for each frame. A stream may analyse
    `min(max_rate, total_rate / active streams)` frames a second on average (a token bucket
    per stream, so a camera that delivers unevenly still gets its share); the other frames
    pass through with the last boxes drawn, which costs almost nothing. A stream counts as
    active while it sent a frame in the last `idle_after` seconds, or until `leave`.
    Thread-safe: every stream's worker thread calls it.
    """

    def __init__(
        self,
        total_rate: float = 30.0,
        max_rate: float = 15.0,
        idle_after: float = 2.0,
        burst: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total_rate = total_rate
        self.max_rate = max_rate
        self.idle_after = idle_after
        self.burst = burst
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[int, float] = {}  # stream key -> when it last offered a frame
        self._tokens: dict[int, float] = {}  # stream key -> frames it may analyse now

    def _expire(self, now: float) -> None:
        for key in [k for k, t in self._seen.items() if now - t > self.idle_after]:
            self._seen.pop(key, None)
            self._tokens.pop(key, None)

    def admit(self, key: int) -> bool:
        """Whether stream `key` may analyse the frame it has now (else: pass it through)."""
        now = self.clock()
        with self._lock:
            self._expire(now)
            last = self._seen.get(key)
            self._seen[key] = now
            rate = self._rate(len(self._seen))
            tokens = 1.0 if last is None else self._tokens[key] + (now - last) * rate
            tokens = min(self.burst, tokens)
            admitted = tokens >= 1.0
            self._tokens[key] = tokens - 1.0 if admitted else tokens
            return admitted

    def _rate(self, active: int) -> float:
        return min(self.max_rate, self.total_rate / max(1, active))

    def rate(self) -> float:
        """Frames a second each active stream may analyse now."""
        with self._lock:
            self._expire(self.clock())
            return self._rate(len(self._seen))

    def active(self, key: int | None = None) -> int:
        """Active streams (counting stream `key` as one, whether or not it has started)."""
        with self._lock:
            self._expire(self.clock())
            return len(self._seen) + (key is not None and key not in self._seen)

    def detect_stride(self) -> int:
        """How many times rarer full-frame face searches get: x1 for up to 2 streams, x2 for
        3-4, x3 for 5-6 (in between, known faces are followed locally, 5-10x cheaper)."""
        return max(1, (self.active() + 1) // 2)

    def leave(self, key: int) -> None:
        with self._lock:
            self._seen.pop(key, None)
            self._tokens.pop(key, None)


_shared_budget = StreamBudget()


def shared_budget() -> StreamBudget:
    """The one budget of this process (every browser session's stream uses it)."""
    return _shared_budget


def tolerate_busy_consent_checks(retransmissions: int = 3) -> None:
    """Let a busy server keep its WebRTC streams: retransmit ICE consent checks.

    aioice checks consent (RFC 7675) every ~5 s with ONE STUN request that must be answered
    within 0.5 s, and closes the connection after 6 misses in a row. With 4 streams on 2 cores
    (measured: up to 250 KB of RTP datagrams queued in the server's sockets, read one per event
    loop turn, ahead of the answer) the checks missed and streams ended ~35-40 s after they
    started, silently (aioice logs that at INFO, with no handler). Retransmitting as any STUN
    transaction does (0.5, 1, 2, 4 s) waits up to 7.5 s for the answer. A peer that really
    left still expires, only a few seconds later.
    Idempotent; does nothing without aioice.
    """
    try:
        from aioice import ice, stun
    except ImportError:
        return
    if getattr(ice.Connection, "_moodlens_consent", False):
        return

    async def query_consent(self) -> None:
        import asyncio
        import random

        failures = 0
        while True:
            await asyncio.sleep(ice.CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
            for pair in self._nominated.values():
                request = self.build_request(pair, nominate=False)
                try:
                    await pair.protocol.request(
                        request,
                        pair.remote_addr,
                        integrity_key=self.remote_password.encode("utf8"),
                        retransmissions=retransmissions,
                    )
                    failures = 0
                except stun.TransactionError:
                    failures += 1
                if failures >= ice.CONSENT_FAILURES:
                    ice.logger.info("%s Consent to send expired", self)
                    self._query_consent_task = None
                    return await self.close()

    ice.Connection.query_consent = query_consent
    ice.Connection._moodlens_consent = True


def latest_frames_only(relay) -> None:
    """Relay video as the newest frame only, so a server that falls behind drops frames.

    streamlit-webrtc passes every track through aiortc's `MediaRelay` with a buffer: one
    unbounded queue per consumer. When the VP8 encoder of the video sent back cannot keep up
    (4 streams on 2 cores), frames pile up there: the server's RSS grew by ~680 MB in 4
    minutes and the video shown lagged further and further behind. Unbuffered, each consumer
    takes the newest frame and older ones are dropped. Audio stays buffered. Idempotent.
    """
    if getattr(relay, "_moodlens_latest_only", False):
        return
    subscribe = relay.subscribe

    def subscribe_latest(track, buffered: bool = True):
        return subscribe(track, buffered=buffered and track.kind != "video")

    relay.subscribe = subscribe_latest
    relay._moodlens_latest_only = True


@dataclass
class LiveAnalyzer:
    """Stateful per-stream analyzer. Create one per browser session.

    A full-frame face search runs every `detect_every` frames (and whenever no face is being
    followed); in between, each known face is re-found in a small window around where it was
    (`FaceDetector.detect_near`), which is ~5-10x cheaper. Every followed face is classified on
    every frame, all faces in one batch.
    """

    model: EmotionModel | Future  # a Future while the model loads: frames pass through
    detector: FaceDetector = field(default_factory=FaceDetector)
    detect_every: int = 4
    budget: StreamBudget | None = None  # shared with the other streams (None: every frame)
    alpha: float = 0.35
    window_seconds: float = 3.0
    timeline_seconds: float = 600.0
    timeline_interval: float = 0.25
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # the state the page reads (snapshot)
        # One frame's whole analysis at a time, and never beside a reset: the tracker and the
        # smoother are the frame worker's, and Stop (on another thread) must not clear them
        # halfway through a frame. Re-entrant: `process` holds it around `analyze`.
        self._analysis = threading.RLock()
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
        self._lead: int | None = None  # the face whose mood picks the music (`_lead_first`)
        self._frame_size: tuple[int, int] | None = None
        self._last_frame: np.ndarray | None = None
        self._errors_seen: set[type] = set()
        self.last_times = StageTimes()

    def ready_model(self) -> EmotionModel | None:
        """The emotion model, or None while it is still loading (or could not load)."""
        model = self.model
        if isinstance(model, Future):
            if not model.done():
                return None
            error = model.exception()
            if error is not None:
                with self._lock:
                    self._status = f"The emotion model could not load: {error}"
                return None
            loaded = model.result()
            with self._lock:  # unless `use_model` handed it another meanwhile
                if self.model is model:
                    self.model = loaded
            return loaded
        return model

    @property
    def load_failed(self) -> bool:
        """True when the model it was given could not load (the page then hands it a new one)."""
        model = self.model
        return isinstance(model, Future) and model.done() and model.exception() is not None

    def use_model(self, model: EmotionModel | Future) -> None:
        """Analyse with `model` from the next frame on, e.g. a load started again after one
        failed (the model file restored or replaced)."""
        with self._lock:
            self.model = model
            self._status = "Loading the emotion model… the video shows meanwhile."

    def admit(self) -> bool:
        """Whether to analyse the frame this stream has now: the model is ready and the shared
        budget gives this stream a turn. Otherwise the frame passes through (`overlay`)."""
        if self.ready_model() is None:
            with self._lock:
                if not self._status.startswith("The emotion model could not load"):
                    self._status = "Loading the emotion model… the video shows meanwhile."
            return False
        return self.budget is None or self.budget.admit(id(self))

    def current_faces(self) -> list[FaceResult]:
        """The faces of the last analysed frame (drawn on the frames in between)."""
        with self._lock:
            return list(self._faces)

    def analyze(self, frame: np.ndarray) -> list[FaceResult]:
        """Detect, track and classify every face in a BGR frame; updates shared state."""
        with self._analysis:
            return self._analyze(frame)

    def _analyze(self, frame: np.ndarray) -> list[FaceResult]:
        model = self.ready_model()
        if model is None:
            raise ValueError("the emotion model is not loaded yet")
        start = time.perf_counter()
        times = StageTimes()
        if frame.shape[:2] != self._frame_size:
            # WebRTC lowers the camera's resolution when the CPU or the network is short (and
            # raises it again): boxes from the old size would coast as ghosts. Start over.
            self._frame_size = frame.shape[:2]
            self._tracker.reset()
            self._since_full_search = 0
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
            probabilities = model.predict(crops)
            times.infer = (time.perf_counter() - t0) * 1000
            for face_id, box, probs in zip(ids, tracked, probabilities, strict=True):
                results.append(FaceResult(face_id, box, self._smoother.update(face_id, probs)))
        else:
            self._tracker.update([])
        self._smoother.step()
        results = self._lead_first(results)
        if not results:
            status = (
                "No face found: look at the camera, face lit and uncovered, close enough "
                "to fill about a fifth of the picture."
            )
        elif len(results) == 1:
            status = "1 face"
        else:
            status = f"{len(results)} faces: #{results[0].face_id} picks the music"
        self._publish(results, status, start, times)
        return results

    def _lead_first(self, results: list[FaceResult]) -> list[FaceResult]:
        """The faces with the one whose mood picks the music first: the largest, kept while it
        stays in the picture unless another grows LEAD_SWITCH_AREA times larger. Two faces of
        about one size would otherwise swap the lead on every frame's detector jitter and the
        music would follow a blend of both."""
        if not results:
            self._lead = None
            return results
        lead = next((r for r in results if r.face_id == self._lead), None)
        largest = max(results, key=lambda r: r.box.area)
        if lead is None or largest.box.area > LEAD_SWITCH_AREA * lead.box.area:
            lead = largest
        self._lead = lead.face_id
        return [lead] + [r for r in results if r is not lead]

    def _find_faces(self, frame: np.ndarray) -> list[FaceBox]:
        """Full search every `detect_every` frames or when nothing is followed; else local."""
        known = self._tracker.recent_tracks()
        # Fewer full-frame searches per stream as streams are added (see StreamBudget).
        every = self.detect_every * (self.budget.detect_stride() if self.budget else 1)
        if not known or self._since_full_search + 1 >= every:
            self._since_full_search = 0
            return self.detector.detect(frame)
        self._since_full_search += 1
        boxes: list[FaceBox] = []
        for box, missed in known:
            found = self.detector.detect_near(frame, box)
            if found is None and not missed:
                # A face the local search misses (motion blur, a turned head) coasts on its
                # last box until the next full search, at most `every - 1` frames away. One the
                # full search missed too only comes back if the local search finds it: coasting
                # it would keep a face that left the picture alive forever.
                found = box
            if found is not None and all(found.iou(b) < 0.5 for b in boxes):
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
        """Analyze and return an annotated copy; a bad frame is returned as it came (and
        every frame while the model loads)."""
        if self.ready_model() is None:
            return frame
        with self._analysis:
            try:
                results = self.analyze(frame)
            except ImageError as error:  # the frame itself (its shape) is unusable
                with self._lock:
                    self._status = f"Skipped a frame the camera sent damaged ({error})."
                return frame
            except (cv2.error, ValueError) as error:  # our own pipeline's: not the camera's
                self.failed(error)
                return frame
            annotated = annotate(frame, results)
            with self._lock:
                self._last_frame = annotated
        return annotated

    def failed(self, error: Exception) -> None:
        """An analysis raised something unexpected: logged once per kind, shown on the page."""
        with self._lock:
            self._status = f"A frame could not be analysed ({type(error).__name__}: {error})."
            first = type(error) not in self._errors_seen
            self._errors_seen.add(type(error))
        if first:
            _log.exception("live analysis failed; the stream goes on", exc_info=error)

    def last_annotated_frame(self) -> np.ndarray | None:
        """The latest annotated frame (kept in memory only, for the snapshot button)."""
        with self._lock:
            return None if self._last_frame is None else self._last_frame.copy()

    def snapshot(self) -> LiveSnapshot:
        """A consistent copy of the latest results for the page."""
        with self._lock:
            now = self.clock()
            # The rate over the last few seconds: a stream whose frames stopped shows 0.
            times = [t for t in self._frame_times if now - t <= self.window_seconds]
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

    def reset(self, keep_timeline: bool = False) -> None:
        """Forget faces, timeline and counters (another model: its readings would blend in);
        leave the shared budget. A stopped stream keeps its timeline (`keep_timeline`): the
        viewer looks back at it after Stop, and the next stream of the session goes on it."""
        if self.budget is not None:
            self.budget.leave(id(self))
        with self._analysis, self._lock:  # after the frame in flight, if any
            self._smoother.reset()
            self._tracker.reset()
            self._since_full_search = 0
            self._lead = None
            self._faces = []
            if not keep_timeline:
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
        if not analyzer.admit():
            # Not this stream's turn (or the model is loading): the frame goes back at once,
            # with the last boxes drawn if there are any, so the video stays smooth.
            faces = analyzer.current_faces()
            if not faces:
                return frame
            annotated = annotate(frame.to_ndarray(format="bgr24"), faces)
        else:
            try:
                annotated = analyzer.process(frame.to_ndarray(format="bgr24"))
            except Exception as error:
                # streamlit-webrtc ends its worker thread on any exception: the video would
                # freeze for good. Say so on the page, pass the frame on, try the next one.
                analyzer.failed(error)
                return frame
        out = av.VideoFrame.from_ndarray(annotated, format="bgr24")
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out

    return callback


def analyze_still(
    image: np.ndarray, model: EmotionModel, detector: FaceDetector, tta_flip: bool = True
) -> list[FaceResult]:
    """Every face of one photo, largest first, numbered 1..n (no smoothing, no tracking).
    A photo is read once, so by default each face is read as taken and mirrored and the two
    answers averaged (`tta_flip`: the cards' "flip TTA" accuracy, at twice the inference)."""
    gray = to_gray(image)
    boxes = detector.detect(image)
    if not boxes:
        return []
    crops = np.stack([prepare_face(gray, box) for box in boxes])
    probabilities = model.predict(crops, tta_flip=tta_flip)
    return [
        FaceResult(i + 1, box, probs)
        for i, (box, probs) in enumerate(zip(boxes, probabilities, strict=True))
    ]

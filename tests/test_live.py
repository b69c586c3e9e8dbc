"""core.vision.live: the frame pipeline the live page runs, on real faces in generated frames."""

from __future__ import annotations

import threading
import time

import av
import numpy as np

from core.vision.faces import FaceBox, FaceDetector
from core.vision.live import LiveAnalyzer, analyze_still, make_frame_callback
from core.vision.tracking import FaceTracker
from tests.support.scenes import layout, scene


def _face_ids(detectable, n):
    return [i for cls in sorted(detectable) for i in detectable[cls]][:n]


def test_tracker_keeps_ids_for_moving_faces_and_expires_lost_ones():
    tracker = FaceTracker(max_missed=1)
    a, b = FaceBox(10, 10, 100, 100), FaceBox(300, 10, 100, 100)
    first = tracker.update([a, b])
    moved = tracker.update([FaceBox(305, 12, 100, 100), FaceBox(14, 12, 100, 100)])
    assert moved == first[::-1]
    tracker.update([])
    tracker.update([])
    assert tracker.update([a])[0] not in first  # expired, so a new id


def test_tracked_boxes_hold_still_while_detections_jitter():
    tracker = FaceTracker()
    jittery = [
        FaceBox(100 + (8 if i % 2 else 0), 50, 120 - (6 if i % 2 else 0), 120) for i in range(10)
    ]
    drawn = []
    for box in jittery:
        (track_id,) = tracker.update([box])
        drawn.append(tracker.box_of(track_id))
    assert {b.x for b in jittery[4:]} == {100, 108}
    assert max(b.x for b in drawn[4:]) - min(b.x for b in drawn[4:]) <= 4  # half the jitter
    assert all(100 < b.x < 108 for b in drawn[4:])  # settled between the two readings
    # A face that really moves is followed within a few frames.
    for _ in range(5):
        (track_id,) = tracker.update([FaceBox(150, 50, 120, 120)])
    assert tracker.box_of(track_id).x >= 145


def test_analyzer_tracks_smooths_and_reports(public_test, shipped_model, detector, detectable):
    x, _ = public_test
    # A face the model is sure of: the dominant-emotion check below is about the pipeline,
    # not about an ambiguous face whose label flips between frames.
    candidates = [i for cls in sorted(detectable) for i in detectable[cls]]
    i = max(candidates, key=lambda j: float(shipped_model.predict(x[j : j + 1]).max()))
    clock = iter(np.arange(0, 100, 0.1))
    analyzer = LiveAnalyzer(shipped_model, detector, clock=lambda: next(clock))
    box = layout(1)[0]
    for step in range(6):
        shifted = FaceBox(box.x + 3 * step, box.y, box.w, box.h)
        out = analyzer.process(scene([x[i]], [shifted], seed=step))
        assert out.shape == (480, 640, 3)
    snap = analyzer.snapshot()
    assert len(snap.faces) == 1 and snap.faces[0].face_id == 1  # one id all along
    assert np.isclose(snap.faces[0].probabilities.sum(), 1.0)
    assert snap.frames_processed == 6 and snap.timeline
    assert snap.dominant_emotion == snap.faces[0].label
    # The annotated frame differs from the input where the box is drawn.
    raw = scene([x[i]], [box])
    assert not np.array_equal(analyzer.process(raw), raw)


def test_bad_frames_never_raise(shipped_model, detector):
    analyzer = LiveAnalyzer(shipped_model, detector)
    black = np.zeros((480, 640, 3), np.uint8)
    assert np.array_equal(analyzer.process(black), black)
    assert "dark" in analyzer.snapshot().status
    weird = np.zeros((480, 640, 7), np.uint8)  # corrupt: impossible channel count
    assert analyzer.process(weird) is weird
    assert "damaged" in analyzer.snapshot().status
    analyzer.reset()
    assert analyzer.snapshot().frames_processed == 0


def test_a_failure_of_the_pipeline_is_not_blamed_on_the_camera(
    public_test, shipped_model, detector, detectable, monkeypatch
):
    x, _ = public_test
    face = next(i for cls in sorted(detectable) for i in detectable[cls])
    analyzer = LiveAnalyzer(shipped_model, detector)

    def broken(*_args, **_kwargs):
        raise ValueError("cannot reshape array of size 0 into shape (1,48,48,1)")

    monkeypatch.setattr(shipped_model, "predict", broken)
    frame = scene([x[face]], layout(1))
    assert analyzer.process(frame) is frame  # passed on as it came, the stream goes on
    status = analyzer.snapshot().status
    assert "could not be analysed (ValueError: cannot reshape" in status
    assert "camera" not in status


def test_several_faces_and_no_face_statuses(public_test, shipped_model, detector, detectable):
    x, _ = public_test
    ids = _face_ids(detectable, 2)
    analyzer = LiveAnalyzer(shipped_model, detector)
    analyzer.process(scene([x[j] for j in ids], layout(2, size=200)))
    snap = analyzer.snapshot()
    assert len(snap.faces) == 2 and "2 faces" in snap.status
    # Faces that leave coast on their boxes until the next full search, then are gone, and
    # stay gone (a coasted box must not count as a sighting: it would never expire).
    for _ in range(analyzer.detect_every):
        analyzer.process(scene([], []))
    assert "No face" in analyzer.snapshot().status
    for step in range(4 * analyzer.detect_every):
        analyzer.process(scene([], [], seed=step))
        assert not analyzer.snapshot().faces, f"a ghost face {step + 1} frames later"


def test_snapshot_is_safe_while_frames_arrive(public_test, shipped_model, detector, detectable):
    x, _ = public_test
    frame = scene([x[_face_ids(detectable, 1)[0]]], layout(1))
    analyzer = LiveAnalyzer(shipped_model, detector)
    errors = []

    def worker():
        try:
            for _ in range(10):
                analyzer.process(frame)
        except Exception as error:  # pragma: no cover - the assertion below reports it
            errors.append(error)

    thread = threading.Thread(target=worker)
    thread.start()
    while thread.is_alive():
        analyzer.snapshot()
    thread.join()
    assert not errors and analyzer.snapshot().frames_processed == 10


def test_webrtc_callback_roundtrip(public_test, shipped_model, detector, detectable):
    x, _ = public_test
    frame = scene([x[_face_ids(detectable, 1)[0]]], layout(1))
    analyzer = LiveAnalyzer(shipped_model, detector)
    callback = make_frame_callback(analyzer)
    incoming = av.VideoFrame.from_ndarray(frame, format="bgr24")
    incoming.pts = 42
    out = callback(incoming)
    assert out.pts == 42 and out.to_ndarray(format="bgr24").shape == frame.shape
    assert analyzer.snapshot().faces


def test_analyze_still_numbers_faces(public_test, shipped_model, detector, detectable):
    x, _ = public_test
    ids = _face_ids(detectable, 3)
    photo_detector = FaceDetector.for_photos()
    faces = analyze_still(scene([x[j] for j in ids], layout(3, 180)), shipped_model, photo_detector)
    assert [f.face_id for f in faces] == [1, 2, 3]


def test_analyze_still_reads_each_face_as_taken_and_mirrored(
    public_test, shipped_model, detector, detectable
):
    from core.vision.faces import prepare_face, to_gray

    x, _ = public_test
    photo = scene([x[j] for j in _face_ids(detectable, 2)], layout(2, 180))
    photo_detector = FaceDetector.for_photos()
    faces = analyze_still(photo, shipped_model, photo_detector)
    crops = np.stack([prepare_face(to_gray(photo), f.box) for f in faces])
    plain = shipped_model.predict(crops)
    mirrored = shipped_model.predict(crops[:, :, ::-1])
    read = np.stack([f.probabilities for f in faces])
    assert np.allclose(read, (plain + mirrored) / 2, atol=1e-5)
    assert not np.allclose(read, plain, atol=1e-3)
    once = analyze_still(photo, shipped_model, photo_detector, tta_flip=False)
    assert np.allclose(np.stack([f.probabilities for f in once]), plain, atol=1e-5)


def test_a_stream_whose_model_failed_to_load_takes_up_a_new_load(
    public_test, shipped_model, detector, detectable
):
    from concurrent.futures import Future

    from core.emotion.model import ModelLoadError

    x, _ = public_test
    frame = scene([x[_face_ids(detectable, 1)[0]]], layout(1))
    failed: Future = Future()
    failed.set_exception(ModelLoadError("models/cnn.npz is damaged"))
    analyzer = LiveAnalyzer(failed, detector)
    assert analyzer.process(frame) is frame and analyzer.load_failed
    assert "could not load: models/cnn.npz is damaged" in analyzer.snapshot().status
    again: Future = Future()
    analyzer.use_model(again)  # the file restored: the page started a new load
    assert not analyzer.load_failed and analyzer.process(frame) is frame
    assert "Loading" in analyzer.snapshot().status
    again.set_result(shipped_model)
    analyzer.process(frame)
    assert analyzer.snapshot().faces and analyzer.snapshot().status == "1 face"


class CountingDetector(FaceDetector):
    """The real detector, counting full-frame searches."""

    full_searches = 0

    def detect(self, frame):
        self.full_searches += 1
        return super().detect(frame)


class SlowDetector(FaceDetector):
    """The real detector, signalling when a full search starts and taking its time."""

    def __init__(self) -> None:
        super().__init__()
        self.searching = threading.Event()

    def detect(self, frame):
        self.searching.set()
        time.sleep(0.3)
        return super().detect(frame)


def test_stop_waits_for_the_frame_in_flight_and_leaves_nothing_of_it(
    public_test, shipped_model, detectable
):
    x, _ = public_test
    frame = scene([x[_face_ids(detectable, 1)[0]]], layout(1))
    detector = SlowDetector()
    analyzer = LiveAnalyzer(shipped_model, detector)
    worker = threading.Thread(target=analyzer.process, args=(frame,))
    worker.start()
    assert detector.searching.wait(10)
    analyzer.reset()  # Stop pressed while the frame is being analysed
    worker.join()
    snap = analyzer.snapshot()
    assert snap.status == "Stopped." and not snap.faces and snap.frames_processed == 0
    assert analyzer.last_annotated_frame() is None


def test_full_search_every_n_frames_follows_faces_between(public_test, shipped_model, detectable):
    x, _ = public_test
    ids = _face_ids(detectable, 2)
    boxes = layout(2, 180)
    detector = CountingDetector()
    analyzer = LiveAnalyzer(shipped_model, detector, detect_every=4)
    seen_ids = set()
    for step in range(12):
        moved = [FaceBox(b.x + 2 * step, b.y + step, b.w, b.h) for b in boxes]
        analyzer.process(scene([x[i] for i in ids], moved, seed=3))
        faces = analyzer.snapshot().faces
        assert len(faces) == 2, f"frame {step}: {analyzer.snapshot().status}"
        seen_ids |= {f.face_id for f in faces}
    assert seen_ids == {1, 2}  # followed, never re-numbered
    assert detector.full_searches == 3  # frames 0, 4, 8
    # A face that walks in is picked up by the next full search, at most N frames later.
    three = layout(3, 160)
    for _ in range(4):
        analyzer.process(scene([x[i] for i in _face_ids(detectable, 3)], three, seed=3))
    assert len(analyzer.snapshot().faces) == 3


def test_stream_budget_shares_the_cpu_and_degrades_instead_of_stopping():
    from core.vision.live import StreamBudget

    clock = {"now": 0.0}
    budget = StreamBudget(total_rate=30.0, max_rate=15.0, clock=lambda: clock["now"])

    def run(keys, seconds=10.0, fps=15):
        counts = dict.fromkeys(keys, 0)
        start = clock["now"]
        for frame in range(int(seconds * fps)):
            clock["now"] = start + frame / fps
            for key in keys:
                counts[key] += budget.admit(key)
        return {key: n / seconds for key, n in counts.items()}

    alone = run([1])
    assert alone[1] >= 14  # one stream: the camera's full rate (max 15/s)
    four = run([1, 2, 3, 4])
    assert all(6.5 <= rate <= 8.5 for rate in four.values()), four  # 30/s shared by 4
    assert budget.active() == 4 and budget.rate() == 7.5
    clock["now"] += 5.0  # every stream went quiet: they expire, the budget frees up
    assert budget.active() == 0 and budget.rate() == 15.0


class JitteryDetector(FaceDetector):
    """The real detector, as it reads two faces of about one size: which is larger (first)
    swaps from one frame to the next with a few pixels of jitter."""

    calls = 0

    def detect(self, frame):
        self.calls += 1
        found = super().detect(frame)
        return found[::-1] if self.calls % 2 else found


def test_the_face_that_picks_the_music_keeps_it_while_two_faces_are_about_one_size(
    public_test, shipped_model, detectable
):
    """The music must follow one of two faces of about one size, not a blend of both, until
    another face comes much closer."""
    x, _ = public_test
    left, right = (x[i] for i in _face_ids(detectable, 2))
    analyzer = LiveAnalyzer(shipped_model, JitteryDetector(), detect_every=1)
    leads = []
    for step in range(8):
        boxes = [FaceBox(50, 140, 190, 190), FaceBox(370, 140, 180, 180)]
        analyzer.process(scene([left, right], boxes, seed=step))
        faces = analyzer.snapshot().faces
        assert len(faces) == 2, analyzer.snapshot().status
        leads.append(faces[0].face_id)
    assert len(set(leads)) == 1, leads
    assert f"#{leads[0]} picks the music" in analyzer.snapshot().status
    for step in range(3):  # the right face comes close: it takes the music
        boxes = [FaceBox(60, 180, 140, 140), FaceBox(330, 100, 300, 300)]
        analyzer.process(scene([left, right], boxes, seed=step))
    assert analyzer.snapshot().faces[0].box.x > 300


def test_the_songs_mood_changes_only_when_another_leads_clearly_for_a_while():
    from core.labels import EMOTIONS
    from core.vision.live import SettledMood

    def window(**probabilities):
        out = np.full(len(EMOTIONS), 0.01)
        for name, p in probabilities.items():
            out[EMOTIONS.index(name)] = p
        return out

    mood = SettledMood(margin=0.05, hold_seconds=2.0)
    assert mood.update(window(neutral=0.45, sad=0.40), now=0.0) == "neutral"
    # A near-tie swapping its leader every second keeps the songs' mood.
    for second in range(1, 10):
        tie = window(neutral=0.41, sad=0.44) if second % 2 else window(neutral=0.44, sad=0.41)
        assert mood.update(tie, now=float(second)) == "neutral"
    # A clear lead takes over once it has held for two seconds, not at once.
    assert mood.update(window(happy=0.7, neutral=0.2), now=10.0) == "neutral"
    assert mood.update(window(happy=0.7, neutral=0.2), now=11.0) == "neutral"
    assert mood.update(window(happy=0.7, neutral=0.2), now=12.0) == "happy"
    # A lead that lapses starts its wait again.
    assert mood.update(window(sad=0.6, happy=0.3), now=13.0) == "happy"
    assert mood.update(window(happy=0.6, sad=0.3), now=14.0) == "happy"
    assert mood.update(window(sad=0.6, happy=0.3), now=15.0) == "happy"
    assert mood.update(window(sad=0.6, happy=0.3), now=16.0) == "happy"
    assert mood.update(window(sad=0.6, happy=0.3), now=17.0) == "sad"
    # Stopped, the stream's last window (here a clear happy lead) moves nothing any more ...
    for second in range(18, 30):
        assert mood.follow(window(happy=0.9), now=float(second), streaming=False) == "sad"
    assert mood.follow(window(happy=0.9), now=30.0, streaming=True) == "sad"  # ... streaming,
    assert mood.follow(window(happy=0.9), now=32.0, streaming=True) == "happy"  # it settles
    # A page that never streamed settles at once on what it has.
    assert SettledMood().follow(window(fear=0.5), now=0.0, streaming=False) == "fear"


def test_a_stopped_stream_keeps_its_timeline_and_another_model_starts_a_new_one(
    public_test, shipped_model, detector, detectable
):
    x, _ = public_test
    face = next(i for cls in sorted(detectable) for i in detectable[cls])
    clock = iter(np.arange(0.0, 100.0, 0.5))
    analyzer = LiveAnalyzer(shipped_model, detector, clock=lambda: float(next(clock)))
    for step in range(4):
        analyzer.process(scene([x[face]], layout(1), seed=step))
    assert len(analyzer.snapshot().timeline) == 4
    analyzer.reset(keep_timeline=True)  # Stop: the viewer looks back at the session's moods
    snap = analyzer.snapshot()
    assert len(snap.timeline) == 4 and not snap.faces and snap.frames_processed == 0
    assert snap.status == "Stopped."
    analyzer.reset()  # another model: its readings must not blend with the old ones
    assert analyzer.snapshot().timeline == []

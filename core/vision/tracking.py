"""Face tracking across frames: stable ids by box overlap, and boxes smoothed per track."""

from __future__ import annotations

from core.vision.faces import FaceBox


class FaceTracker:
    """Greedy IoU matching of this frame's boxes to last frame's, giving stable ids.

    Each track keeps a smoothed box (`box_of`): an exponential moving average of its detections
    with weight `box_alpha` on the newest, so drawn boxes do not jitter with the detector.
    """

    def __init__(self, min_iou: float = 0.3, max_missed: int = 15, box_alpha: float = 0.5) -> None:
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.box_alpha = box_alpha
        self._tracks: dict[int, tuple[FaceBox, int]] = {}
        self._next_id = 1

    def update(self, boxes: list[FaceBox]) -> list[int]:
        """An id per box (same order); unmatched boxes get new ids, lost tracks expire."""
        pairs = sorted(
            (
                (box.iou(old), i, track_id)
                for i, box in enumerate(boxes)
                for track_id, (old, _) in self._tracks.items()
            ),
            reverse=True,
        )
        ids: list[int | None] = [None] * len(boxes)
        used: set[int] = set()
        for overlap, i, track_id in pairs:
            if overlap < self.min_iou:
                break
            if ids[i] is None and track_id not in used:
                ids[i] = track_id
                used.add(track_id)
        for i, box in enumerate(boxes):
            if ids[i] is None:
                ids[i] = self._next_id
                self._next_id += 1
            previous = self._tracks.get(ids[i])
            smoothed = box if previous is None else _blend(previous[0], box, self.box_alpha)
            self._tracks[ids[i]] = (smoothed, 0)
        for track_id in list(self._tracks):
            if track_id not in ids:
                box, missed = self._tracks[track_id]
                if missed + 1 > self.max_missed:
                    del self._tracks[track_id]
                else:
                    self._tracks[track_id] = (box, missed + 1)
        return [int(i) for i in ids]

    def box_of(self, track_id: int) -> FaceBox:
        """The track's smoothed box."""
        return self._tracks[track_id][0]

    def recent_tracks(self, max_missed: int = 1) -> list[tuple[FaceBox, int]]:
        """(box, frames missed) of tracks seen within the last `max_missed` frames, largest
        box first."""
        tracks = [(box, missed) for box, missed in self._tracks.values() if missed <= max_missed]
        return sorted(tracks, key=lambda track: track[0].area, reverse=True)

    def reset(self) -> None:
        self._tracks.clear()


def _blend(old: FaceBox, new: FaceBox, alpha: float) -> FaceBox:
    """`alpha` of the new box plus the rest of the old one, coordinate by coordinate."""
    mix = [round(alpha * n + (1 - alpha) * o) for o, n in zip(
        (old.x, old.y, old.w, old.h), (new.x, new.y, new.w, new.h), strict=True
    )]  # fmt: skip
    return FaceBox(*mix)

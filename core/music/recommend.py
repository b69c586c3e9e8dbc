"""CLI of the local recommender: ``python -m core.music.recommend --emotion sad --strategy uplift``.

The recommender itself is core.music.recommender (ranking), core.music.targets (tuning tables and
emotion -> target maths) and core.music.clusters ("more like this"); see `python -m
core.music.recommend --help` for the flags. `--m3u FILE`, `--xspf FILE` and `--csv FILE` also
write the recommendations as a playlist file (core.music.playlists).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.labels import EMOTIONS
from core.music.catalog import CatalogError, load_catalog, load_default_catalog
from core.music.playlists import export
from core.music.recommender import Recommender
from core.music.targets import (
    STRATEGIES,
    blended_target,
    describe_face,
    emotion_weights,
)
from core.music.tracks import Recommendation

PLAYLIST_FLAGS = {"m3u": "M3U8", "xspf": "XSPF", "csv": "CSV"}  # --flag -> playlists format


def _parse_probs(text: str) -> dict[str, float]:
    probs: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        probs[name.strip().lower()] = float(value)
    return probs


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.music.recommend --emotion sad --strategy uplift -k 5 --json``."""
    parser = argparse.ArgumentParser(
        prog="python -m core.music.recommend", description="Recommend tracks for an emotion."
    )
    face = parser.add_mutually_exclusive_group(required=True)
    face.add_argument("--emotion", choices=EMOTIONS, help="the face's emotion")
    face.add_argument("--probs", help="emotion probabilities, e.g. sad=0.5,neutral=0.4,happy=0.1")
    parser.add_argument("--strategy", choices=STRATEGIES, default="match")
    parser.add_argument(
        "--catalog", help="catalog CSV (default: $MOODLENS_CATALOG or the starter catalog)"
    )
    parser.add_argument("-k", type=int, default=5, help="number of tracks")
    parser.add_argument("--more-like", metavar="N", type=int, help="also list tracks like result N")
    parser.add_argument("--profile", help="apply this profile's thumbs up/down (feedback DB)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    for flag, kind in PLAYLIST_FLAGS.items():
        parser.add_argument(
            f"--{flag}", metavar="FILE", help=f"also write the tracks as a {kind} playlist"
        )
    args = parser.parse_args(argv)
    try:
        catalog = load_catalog(args.catalog) if args.catalog else load_default_catalog()
        probabilities = {args.emotion: 1.0} if args.emotion else _parse_probs(args.probs)
        recommender = Recommender(catalog)
        feedback = None
        if args.profile:
            from core.music.feedback import FeedbackStore

            feedback = FeedbackStore().preference(args.profile)
        recs = recommender.recommend(probabilities, args.strategy, k=args.k, feedback=feedback)
        similar: list[Recommendation] = []
        if args.more_like is not None and 1 <= args.more_like <= len(recs):
            shown = [rec.key for rec in recs]
            similar = recommender.more_like_this(recs[args.more_like - 1], k=args.k, exclude=shown)
    except (CatalogError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    weights = emotion_weights(probabilities)
    title = f"moodlens · {args.strategy} · {describe_face(weights)}"
    for flag, kind in PLAYLIST_FLAGS.items():
        path = getattr(args, flag)
        if path is None:
            continue
        try:
            Path(path).write_bytes(export(recs, kind, title))
        except OSError as err:
            print(f"error: cannot write {path}: {err.strerror or err}", file=sys.stderr)
            return 2
        count = f"{len(recs)} track{'' if len(recs) == 1 else 's'}"
        print(f"wrote {count} to {path} ({kind})", file=sys.stderr)
    if args.json:
        payload: dict[str, Any] = {
            "catalog": catalog.attrs.get("name"),
            "format": catalog.attrs.get("format"),
            "tracks": len(catalog),
            "uses_audio_features": recommender.uses_features,
            "emotions": weights,
            "strategy": args.strategy,
            "target_scaled": {
                f: round(v, 3)
                for f, v in blended_target(weights, args.strategy).items()
                if f in recommender.features
            },
            "recommendations": [rec.to_dict() for rec in recs],
        }
        if args.more_like is not None:
            payload["more_like"] = [rec.to_dict() for rec in similar]
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    print(f"{catalog.attrs.get('name')} · {args.strategy} · {describe_face(weights)}")
    for number, rec in enumerate(recs, start=1):
        print(f"{number}. {rec.title} — {rec.artist} [{rec.mood or '?'}, {rec.genre or '?'}]")
        print(f"   {rec.reason}")
    if similar:
        print(f"More like #{args.more_like}:")
        for rec in similar:
            print(f" - {rec.title} — {rec.artist}: {rec.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

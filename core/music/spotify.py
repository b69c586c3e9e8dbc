"""CLI for Spotify: ``python -m core.music.spotify {probe,recommend}``.

Credentials and endpoints come from `core.settings.Settings.from_env()` (``SPOTIFY_CLIENT_ID`` /
``SPOTIFY_CLIENT_SECRET``; ``MOODLENS_SPOTIFY_API_BASE`` / ``MOODLENS_SPOTIFY_TOKEN_URL`` point it
elsewhere). The client is core.music.spotify_client, the ranking core.music.spotify_ranking.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from core.labels import EMOTIONS
from core.music.spotify_client import SpotifyUnavailable
from core.music.spotify_ranking import SpotifyRecommender
from core.music.targets import STRATEGIES
from core.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.music.spotify {probe,recommend}`` with credentials from the environment."""
    parser = argparse.ArgumentParser(
        prog="python -m core.music.spotify",
        description="Recommendations from Spotify's Web API, designed on what a new Spotify "
        "app can still use.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("probe", help="report which Spotify endpoints this app may use")
    rec = commands.add_parser("recommend", help="recommend Spotify tracks for an emotion")
    rec.add_argument("--emotion", choices=EMOTIONS, required=True)
    rec.add_argument("--strategy", choices=STRATEGIES, default="match")
    rec.add_argument("-k", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        client = SpotifyRecommender.from_settings(Settings.from_env())
        if args.command == "probe":
            print(json.dumps(client.probe(), indent=2))
        else:
            recs = client.recommend({args.emotion: 1.0}, args.strategy, args.k)
            print(json.dumps([r.to_dict() for r in recs], indent=2, ensure_ascii=False))
    except SpotifyUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""core.music.playlists: M3U8, XSPF and CSV files parsed back, tricky names included; the CLI's
--m3u/--xspf/--csv; the history page's "Take these songs with you" download."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import pandas as pd
import pytest

from core.music.playlists import (
    CSV_COLUMNS,
    FORMATS,
    export,
    file_name,
    merge_songs,
    spotify_id,
    to_csv,
    to_m3u8,
    to_xspf,
    tracks_from_frame,
)
from core.music.recommend import main
from core.music.tracks import Recommendation

NS = {"x": "http://xspf.org/ns/0/"}
IDS = ("4uLU6hMCjMI75M1A2tKUQC", "0VjIjW4GlUZAMYd2vXMi3b")


def rec(title: str, artist: str, track_id: str | None = None, **extra) -> Recommendation:
    fields = {
        "album": None,
        "year": None,
        "genre": None,
        "mood": None,
        "popularity": None,
        "reason": "Matches a sad face",
        "score": 1.0,
    }
    return Recommendation(title=title, artist=artist, track_id=track_id, **{**fields, **extra})


TRICKY = [
    rec("Crazy in Love", "Beyoncé & JAY-Z", IDS[0], album="Dangerously <in> Love", year=2003),
    rec('Say "Hi", Mom', "O'Brien, Smith & Co", None, genre="rock", mood="Happy"),
    rec("Party 🎉 Time", "DJ 🐙", IDS[1], features={"duration_ms": 215_400.0}),
    rec("Line\nBreak\r\nSong", "Tab\tArtist", None, reason="Because <b>&amp;</b> ]]> \x07bell"),
]


def m3u8_entries(data: bytes) -> tuple[str, list[tuple[int, str, str]]]:
    """(playlist title, [(seconds, "artist - title", location)]) with the structure checked."""
    lines = data.decode("utf-8").splitlines()
    assert lines[0] == "#EXTM3U"
    assert lines[1].startswith("#PLAYLIST:")
    body = lines[2:]
    assert len(body) % 2 == 0, body
    entries = []
    for info, where in zip(body[::2], body[1::2], strict=True):
        found = re.fullmatch(r"#EXTINF:(-1|\d+),(.+)", info)
        assert found, info
        assert where and not where.startswith("#"), where
        entries.append((int(found.group(1)), found.group(2), where))
    return lines[1].removeprefix("#PLAYLIST:"), entries


def test_m3u8_has_one_extinf_and_one_location_per_track() -> None:
    title, entries = m3u8_entries(to_m3u8(TRICKY, "moodlens · sad & “blue”"))
    assert title == "moodlens · sad & “blue”"
    assert [e[1] for e in entries] == [
        "Beyoncé & JAY-Z - Crazy in Love",
        'O\'Brien, Smith & Co - Say "Hi", Mom',
        "DJ 🐙 - Party 🎉 Time",
        "Tab Artist - Line Break Song",  # a newline in a name would break the file
    ]
    assert [e[0] for e in entries] == [-1, -1, 215, -1]
    assert entries[0][2] == f"https://open.spotify.com/track/{IDS[0]}"
    assert entries[2][2] == f"https://open.spotify.com/track/{IDS[1]}"
    # Tracks without a Spotify id point to a Spotify search for artist and title.
    search = entries[1][2]
    assert search.startswith("https://open.spotify.com/search/") and " " not in search
    assert unquote(search.rsplit("/", 1)[1]) == 'O\'Brien, Smith & Co Say "Hi", Mom'


def test_m3u8_is_utf8_without_a_bom_and_ends_with_a_newline() -> None:
    data = to_m3u8(TRICKY[:1])
    assert not data.startswith(b"\xef\xbb\xbf") and data.endswith(b"\n")
    assert "Beyoncé".encode() in data
    assert to_m3u8([]) == b"#EXTM3U\n#PLAYLIST:moodlens\n"


def test_xspf_parses_and_keeps_every_name() -> None:
    data = to_xspf(TRICKY, 'Sad & "blue" <evening>')
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(data)
    assert root.tag == "{http://xspf.org/ns/0/}playlist" and root.get("version") == "1"
    assert root.findtext("x:title", namespaces=NS) == 'Sad & "blue" <evening>'
    assert root.findtext("x:creator", namespaces=NS) == "moodlens"
    tracks = root.findall("x:trackList/x:track", NS)
    assert [t.findtext("x:title", namespaces=NS) for t in tracks] == [
        "Crazy in Love",
        'Say "Hi", Mom',
        "Party 🎉 Time",
        "Line Break Song",
    ]
    assert [t.findtext("x:creator", namespaces=NS) for t in tracks] == [
        "Beyoncé & JAY-Z",
        "O'Brien, Smith & Co",
        "DJ 🐙",
        "Tab Artist",
    ]
    first, second, third, fourth = tracks
    assert first.findtext("x:location", namespaces=NS) == f"https://open.spotify.com/track/{IDS[0]}"
    assert first.findtext("x:identifier", namespaces=NS) == f"spotify:track:{IDS[0]}"
    assert first.findtext("x:album", namespaces=NS) == "Dangerously <in> Love"
    assert third.findtext("x:duration", namespaces=NS) == "215400"
    # No Spotify id: no location or identifier (XSPF resolves by title/creator), a search link.
    assert second.find("x:location", NS) is None and second.find("x:identifier", NS) is None
    assert second.findtext("x:info", namespaces=NS).startswith("https://open.spotify.com/search/")
    # Text XML cannot carry (a bell character) is dropped; markup-like text stays text.
    assert fourth.findtext("x:annotation", namespaces=NS) == "Because <b>&amp;</b> ]]> bell"


def test_xspf_elements_follow_the_specification_order() -> None:
    order = ["location", "identifier", "title", "creator", "annotation", "info", "image"]
    order += ["album", "duration"]
    track = rec("T", "A", IDS[0], album="Al", image_url="https://i.scdn.co/image/x")
    node = ET.fromstring(to_xspf([track])).find("x:trackList/x:track", NS)
    tags = [child.tag.split("}")[1] for child in node]
    assert tags == [t for t in order if t in tags] and "image" in tags


def test_csv_round_trips_through_the_csv_module() -> None:
    data = to_csv(TRICKY)
    assert data.startswith("\ufeff".encode())  # the mark Excel needs to read UTF-8
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["title"] for r in rows] == [
        "Crazy in Love",
        'Say "Hi", Mom',
        "Party 🎉 Time",
        "Line Break Song",
    ]
    assert rows[0] == {
        "title": "Crazy in Love",
        "artist": "Beyoncé & JAY-Z",
        "album": "Dangerously <in> Love",
        "year": "2003",
        "genre": "",
        "mood": "",
        "spotify_url": f"https://open.spotify.com/track/{IDS[0]}",
    }
    assert rows[1]["artist"] == "O'Brien, Smith & Co" and rows[1]["spotify_url"] == ""
    assert (rows[1]["genre"], rows[1]["mood"]) == ("rock", "Happy")


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_escaped() -> None:
    hostile = [
        rec('=HYPERLINK("https://evil.example","Play")', "+SUM(A1)", None, album="@cmd"),
        rec("-M- live", "Artist - With Dash", None),
    ]
    rows = list(csv.DictReader(io.StringIO(to_csv(hostile).decode("utf-8-sig"), newline="")))
    assert rows[0]["title"] == '\'=HYPERLINK("https://evil.example","Play")'
    assert (rows[0]["artist"], rows[0]["album"]) == ("'+SUM(A1)", "'@cmd")
    assert (rows[1]["title"], rows[1]["artist"]) == ("'-M- live", "Artist - With Dash")


def test_export_chooses_the_format_and_names_the_file() -> None:
    assert export(TRICKY, "m3u8", "x") == to_m3u8(TRICKY, "x")
    assert export(TRICKY, "XSPF", "x") == to_xspf(TRICKY, "x")
    assert export(TRICKY, "csv", "x") == to_csv(TRICKY)
    with pytest.raises(ValueError, match="M3U8, XSPF, CSV"):
        export(TRICKY, "wpl")
    assert file_name("moodlens · sad · Lift my mood", "M3U8") == "moodlens-sad-lift-my-mood.m3u8"
    assert file_name("🎉", "xspf") == "moodlens.xspf"
    assert {f.mime for f in FORMATS.values()} == {
        "audio/x-mpegurl",
        "application/xspf+xml",
        "text/csv",
    }


def test_spotify_ids_come_from_ids_uris_and_links() -> None:
    assert spotify_id(rec("T", "A", IDS[0])) == IDS[0]
    assert spotify_id(rec("T", "A", f"spotify:track:{IDS[1]}")) == IDS[1]
    link = f"https://open.spotify.com/intl-de/track/{IDS[1]}?si=abc"
    assert spotify_id(rec("T", "A", None, external_url=link)) == IDS[1]
    assert spotify_id(rec("T", "A", "not-an-id")) is None
    assert spotify_id(rec("T", "A")) is None


def test_session_songs_keep_first_seen_order_without_repeats() -> None:
    a, b, c = rec("A", "x", IDS[0]), rec("B", "y"), rec("C", "z", IDS[1])
    assert merge_songs([], [a, b]) == [a, b]
    assert merge_songs([a, b], [b, c, a]) == [a, b, c]


def test_liked_songs_become_a_playlist(tmp_path) -> None:
    from core.music.feedback import FeedbackStore

    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    store.record_vote("ana", rec("Déjà Vu", "Beyoncé", IDS[0], genre="r&b", mood="Energetic"), 1)
    store.record_vote("ana", {"title": "Halo", "artist": "Beyoncé"}, 1)
    store.record_vote("ana", {"title": "Nope", "artist": "Someone"}, -1)
    liked = tracks_from_frame(store.liked_songs("ana"))
    assert sorted(t.title for t in liked) == ["Déjà Vu", "Halo"]
    by_title = {t.title: t for t in liked}
    assert by_title["Déjà Vu"].track_id == IDS[0] and by_title["Halo"].track_id is None
    assert by_title["Déjà Vu"].genre == "r&b" and by_title["Halo"].album is None
    _, entries = m3u8_entries(to_m3u8(liked, "Liked by ana"))
    assert {e[1] for e in entries} == {"Beyoncé - Déjà Vu", "Beyoncé - Halo"}
    assert tracks_from_frame(store.liked_songs("nobody")) == []


def test_frames_of_recommendation_dicts_convert_back() -> None:
    frame = pd.DataFrame([t.to_dict() for t in TRICKY[:3]])
    back = tracks_from_frame(frame)
    assert [(t.title, t.artist, t.track_id, t.year) for t in back] == [
        (t.title, t.artist, t.track_id, t.year) for t in TRICKY[:3]
    ]
    years = pd.DataFrame(
        {"title": ["A", "B", "C"], "artist": "Z", "year": ["1e999", "2001-05", None]}
    )
    assert [t.year for t in tracks_from_frame(years)] == [None, 2001, None]  # no OverflowError
    link = f"https://open.spotify.com/track/{IDS[1]}"
    frame = pd.DataFrame({"title": ["X", None], "artist": ["Y", "Z"], "spotify_url": [link, None]})
    (only,) = tracks_from_frame(frame)
    assert spotify_id(only) == IDS[1]


# --------------------------------------------------------------------------- the CLI


def test_cli_writes_every_playlist_format(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    m3u, xspf, table = tmp_path / "sad.m3u8", tmp_path / "sad.xspf", tmp_path / "sad.csv"
    args = ["--emotion", "sad", "--strategy", "uplift", "-k", "5", "--json"]
    code = main([*args, "--m3u", str(m3u), "--xspf", str(xspf), "--csv", str(table)])
    assert code == 0
    out = capsys.readouterr()
    payload = json.loads(out.out)  # stdout stays pure JSON; the notes go to stderr
    titles = [r["title"] for r in payload["recommendations"]]
    assert len(titles) == 5 and "wrote 5 tracks to" in out.err
    title, entries = m3u8_entries(m3u.read_bytes())
    assert title == "moodlens · uplift · a sad face"
    assert [e[1].split(" - ", 1)[1] for e in entries] == titles
    tracks = ET.fromstring(xspf.read_bytes()).findall("x:trackList/x:track", NS)
    assert [t.findtext("x:title", namespaces=NS) for t in tracks] == titles
    assert [r["title"] for r in csv.DictReader(io.StringIO(table.read_text("utf-8-sig")))] == titles


def test_cli_reports_an_unwritable_playlist(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing" / "x.m3u8"
    assert main(["--emotion", "happy", "--m3u", str(target)]) == 2
    assert "cannot write" in capsys.readouterr().err


# --------------------------------------------------------------------------- the page


def test_history_page_offers_liked_songs_as_a_playlist(tmp_path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    from core.music.feedback import FeedbackStore
    from core.paths import REPO_ROOT

    monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    for name in ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REDIRECT_URI"):
        monkeypatch.delenv(name, raising=False)
    FeedbackStore(tmp_path / "feedback.sqlite3").record_vote(
        "default", {"title": "Halo", "artist": "Beyoncé"}, 1
    )
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    app.run()
    app.switch_page("pages/history.py").run()
    assert not app.exception, app.exception
    songs = app.selectbox(key="history_pl_songs")
    assert songs.options == ["My liked songs (1)"]
    assert app.radio(key="history_pl_format").options == list(FORMATS)
    labels = [b.label for b in app.download_button]
    assert "Download M3U8" in labels
    app.radio(key="history_pl_format").set_value("XSPF").run()
    assert "Download XSPF" in [b.label for b in app.download_button]

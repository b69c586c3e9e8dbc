"""core.music.catalog: loading the three catalog formats, normalisation, validation errors."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.labels import MOODS
from core.music.catalog import (
    AUDIO_FEATURES,
    NORMALISED_COLUMNS,
    CatalogError,
    data_moods_path,
    has_audio_features,
    has_moods,
    load_catalog,
    load_default_catalog,
    spotify_features_path,
)
from core.paths import STARTER_CATALOG

FEATURE_HEADER = ",".join(AUDIO_FEATURES)
FEATURE_VALUES = "0.5,0.6,0.7,0.1,0.0,0.1,0.05,-6.0,120.0"


def write(tmp_path: Path, text: str, name: str = "catalog.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def requires(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent (it lives in ../shared/data/music)")
    return path


# --------------------------------------------------------------------------- formats


def test_starter_catalog_loads_with_moods_and_no_features() -> None:
    if not STARTER_CATALOG.exists():
        pytest.skip("data/starter_catalog.csv has not been written yet")
    catalog = load_catalog(STARTER_CATALOG)
    assert catalog.attrs["format"] == "starter"
    assert list(catalog.columns[: len(NORMALISED_COLUMNS)]) == list(NORMALISED_COLUMNS)
    assert has_moods(catalog) and not has_audio_features(catalog)
    assert set(catalog["mood"].dropna()) <= set(MOODS)
    assert catalog["popularity"].isna().all() and catalog["track_id"].isna().all()


def test_data_moods_format_is_normalised() -> None:
    catalog = load_catalog(requires(data_moods_path()))
    assert catalog.attrs["format"] == "data_moods"
    assert len(catalog) == 686
    assert has_moods(catalog) and has_audio_features(catalog)
    assert set(AUDIO_FEATURES) <= set(catalog.columns)
    assert catalog["year"].dtype == "Int64"
    # 1905 is Spotify's placeholder release date for an unknown one in this table.
    assert not (catalog["year"] < 1920).any()
    assert catalog["year"].notna().sum() > 600
    # 'N/A' genres become missing values, the rest lower case.
    assert catalog["genre"].isna().any()
    assert (catalog["genre"].dropna() == catalog["genre"].dropna().str.lower()).all()
    assert catalog["duration_ms"].notna().all()
    assert catalog["track_id"].str.len().eq(22).all()


def test_spotify_features_table_drops_duplicate_ids_and_notes_it() -> None:
    catalog = load_catalog(requires(spotify_features_path()))
    assert catalog.attrs["format"] == "spotify_features"
    assert catalog["track_id"].is_unique
    assert len(catalog) == 19_161
    assert not has_moods(catalog) and has_audio_features(catalog)
    assert any("duplicate track id" in note for note in catalog.attrs["notes"])
    # The BOM before the first header must not hide the genre column.
    assert catalog["genre"].notna().all()
    assert catalog[list(AUDIO_FEATURES)].notna().all().all()


def test_open_binary_gzip_upload_is_read(tmp_path: Path) -> None:
    text = f"track_name,artist_name,track_id,genre,{FEATURE_HEADER}\nA,B,id1,Pop,{FEATURE_VALUES}\n"
    upload = io.BytesIO(gzip.compress(("\ufeff" + text).encode("utf-8")))
    catalog = load_catalog(upload, name="upload.csv.gz")
    assert catalog.attrs["name"] == "upload.csv.gz"
    assert catalog.loc[0, "title"] == "A" and catalog.loc[0, "genre"] == "pop"
    assert catalog.loc[0, "valence"] == pytest.approx(0.7)


def test_infinite_audio_features_are_ignored_and_filled_like_missing_ones() -> None:
    values = ("inf", "-inf", *["0.4"] * 149, *["0.6"] * 149)  # under 1% unreadable: kept
    rows = [FEATURE_VALUES.replace("0.7", value, 1) for value in values]
    text = f"title,artist,{FEATURE_HEADER}\n" + "".join(
        f"T{i},A{i},{row}\n" for i, row in enumerate(rows)
    )
    catalog = load_catalog(io.StringIO(text), name="inf.csv")
    column = AUDIO_FEATURES[2]  # where the 0.7 was
    assert catalog[column].tolist() == [0.5, 0.5, *[0.4] * 149, *[0.6] * 149]  # finite median
    notes = " ".join(catalog.attrs["notes"])
    assert f"Ignored 2 non-numeric or infinite {column}" in notes
    # Parquet holds floats already, infinities included.
    numeric = pd.DataFrame({"title": [f"T{i}" for i in range(200)], "artist": "A"})
    for feature in AUDIO_FEATURES:
        numeric[feature] = 0.25
    numeric.loc[0, AUDIO_FEATURES[0]] = float("inf")
    parquet = io.BytesIO()
    numeric.to_parquet(parquet)
    parquet.seek(0)
    from_parquet = load_catalog(parquet, name="inf.parquet")
    assert from_parquet[AUDIO_FEATURES[0]].tolist() == [0.25] * 200


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_a_damaged_gzip_upload_is_explained(damage: str) -> None:
    text = f"track_name,artist_name,genre,{FEATURE_HEADER}\n" + f"A,B,Pop,{FEATURE_VALUES}\n" * 500
    packed = gzip.compress(text.encode("utf-8"))
    damaged = (
        packed[: len(packed) // 2]
        if damage == "truncated"
        else packed[:20] + bytes(len(packed) - 40) + packed[-20:]  # deflate data zeroed
    )
    with pytest.raises(CatalogError, match="cannot be decompressed"):
        load_catalog(io.BytesIO(damaged), name="upload.csv.gz")


def test_a_gzip_that_expands_past_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small gzip that would inflate far past the CSV limit (a "gzip bomb") is refused with a
    clear message, decompressing no more than the limit."""
    import core.music.catalog as catalog_module

    header = f"track_name,artist_name,genre,{FEATURE_HEADER}\n".encode()
    bomb = gzip.compress(header + b"A,B,Pop," + b"0" * 20_000_000, compresslevel=9)
    assert len(bomb) < 50_000
    monkeypatch.setattr(catalog_module, "MAX_CSV_BYTES", 1_000_000)
    with pytest.raises(CatalogError, match="expands to more than 1 MB"):
        load_catalog(io.BytesIO(bomb), name="bomb.csv.gz")


def test_a_gzip_of_several_members_is_read_whole() -> None:
    """`cat a.gz b.gz` is a valid gzip: every member is read, as gzip.decompress does."""
    head = f"track_name,artist_name,track_id,genre,{FEATURE_HEADER}\nA,B,id1,Pop,{FEATURE_VALUES}\n"
    tail = f"C,D,id2,Rock,{FEATURE_VALUES}\n"
    packed = gzip.compress(head.encode()) + gzip.compress(tail.encode())
    catalog = load_catalog(io.BytesIO(packed), name="two.csv.gz")
    assert catalog["title"].tolist() == ["A", "C"]


def test_exact_duplicate_rows_without_a_track_id_are_dropped_with_a_note(tmp_path: Path) -> None:
    text = (
        "title,artist,mood,genre\n"
        "Song,Me,Happy,pop\nSong,Me,Happy,pop\nSong,Me,Happy,pop\n"  # two exact copies
        "Song,Me,Sad,pop\n"  # same title and artist, another mood: kept
        "Other,You,Calm,jazz\n"
    )
    catalog = load_catalog(write(tmp_path, text))
    assert catalog["mood"].tolist() == ["Happy", "Sad", "Calm"]
    assert any("Dropped 2 exact duplicate row(s)" in note for note in catalog.attrs["notes"])
    distinct = load_catalog(write(tmp_path, "title,artist,mood\nA,B,Happy\nC,D,Sad\n", "d.csv"))
    assert not any("exact duplicate" in note for note in distinct.attrs["notes"])


def test_absurd_audio_feature_values_count_as_unreadable() -> None:
    """1e308 or -1e308 is no valence: ignored and noted like a non-numeric cell, so the
    explorer's histograms still have finite bins; more than 1% of them is an error."""
    from core.analytics import explorer as ex
    from core.analytics import explorer_stats as stats

    values = ("1e308", "-1e308", "2e6", *["0.4"] * 149, *["0.6"] * 149)
    rows = [FEATURE_VALUES.replace("0.7", value, 1) for value in values]
    text = f"title,artist,genre,{FEATURE_HEADER}\n" + "".join(
        f"T{i},A{i},pop,{row}\n" for i, row in enumerate(rows)
    )
    catalog = load_catalog(io.StringIO(text), name="huge.csv")
    column = AUDIO_FEATURES[2]
    assert catalog[column].between(0, 1).all()
    notes = " ".join(catalog.attrs["notes"])
    assert f"Ignored 3 non-numeric or infinite {column} value(s) (or beyond" in notes
    hist = stats.feature_histograms(catalog, [column], ex.group_tracks(catalog, "auto"))
    assert hist["bin_right"].max() <= 1 and hist["tracks"].sum() == len(catalog)
    many = f"title,artist,{FEATURE_HEADER}\n" + "".join(
        f"T{i},A{i},{FEATURE_VALUES.replace('0.7', '1e308' if i % 2 else '0.5', 1)}\n"
        for i in range(20)
    )
    with pytest.raises(CatalogError, match="not numeric"):
        load_catalog(io.StringIO(many), name="many.csv")


def test_a_catalog_path_opens_only_inside_the_allowed_folders(tmp_path: Path) -> None:
    from core.music.catalog import catalog_file

    allowed, outside = tmp_path / "catalogs", tmp_path / "private"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "mine.csv").write_text("title,artist\nA,B\n")
    (outside / "secret.csv").write_text("title,artist\nS,T\n")
    (allowed / "link.csv").symlink_to(outside / "secret.csv")
    assert catalog_file(allowed / "mine.csv", [allowed]) == (allowed / "mine.csv").resolve()
    refused = [
        outside / "secret.csv",
        allowed / ".." / "private" / "secret.csv",  # out through ..
        allowed / "link.csv",  # out through a link
        outside / "missing.csv",  # refused alike: whether it exists is not told
        "/etc/passwd",
    ]
    for path in refused:
        with pytest.raises(CatalogError, match="opened by path only from") as error:
            catalog_file(path, [allowed])
        assert "upload the file instead" in str(error.value)
    with pytest.raises(CatalogError, match="not found"):
        catalog_file(allowed / "missing.csv", [allowed])


def test_text_stream_and_year_parsing(tmp_path: Path) -> None:
    text = (
        "Name,Artist,Release_Date,Mood,Popularity,URI\n"
        "a,x,2019-05-01,happy,50,spotify:track:abc\n"
        "b,y,1999,SAD,150,https://open.spotify.com/track/def?si=1\n"
        "c,z,1905,Calm,,\n"
        "d,w,not a date,energetic,20,ghi\n"
    )
    catalog = load_catalog(io.StringIO(text))
    assert catalog["year"].tolist()[:2] == [2019, 1999]
    assert catalog["year"].iloc[2:].isna().all()
    assert catalog["mood"].tolist() == ["Happy", "Sad", "Calm", "Energetic"]
    assert catalog["track_id"].tolist()[:2] == ["abc", "def"]
    assert pd.isna(catalog.loc[1, "popularity"])  # outside 0..100


def test_semicolon_separated_export_is_read(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, "title;artist;mood\nSong, live;x;Calm\n"))
    assert catalog.loc[0, "title"] == "Song, live" and catalog.loc[0, "mood"] == "Calm"


EURO_HEADER = "title;artist;popularity;duration_ms;" + ";".join(AUDIO_FEATURES)
EURO_ROWS = (
    "Canção;Ana;55;215000;0,7;0,8;0,5;0,1;1,5E-05;0,1;0,05;-6,25;118,211\n"
    "Lied;Bert;40;180000,5;0,6;0,4;0,3;0,2;0;0,2;0,04;-11,235;95\n"
)


@pytest.mark.parametrize("parser", ["pyarrow", "pandas"])
def test_european_excel_decimal_commas_are_read_as_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parser: str
) -> None:
    import core.music.catalog as catalog_module

    if parser == "pandas":
        monkeypatch.setattr(catalog_module, "_read_csv_arrow", lambda raw, separator: None)
    catalog = load_catalog(write(tmp_path, f"{EURO_HEADER}\n{EURO_ROWS}"))
    assert has_audio_features(catalog)
    assert catalog["danceability"].tolist() == [0.7, 0.6]
    assert catalog["valence"].tolist() == [0.5, 0.3]
    assert catalog["instrumentalness"].tolist() == [1.5e-05, 0.0]
    assert catalog["loudness"].tolist() == [-6.25, -11.235]
    assert catalog["tempo"].tolist() == [118.211, 95.0]  # three decimals: not thousands here
    assert catalog["duration_ms"].tolist() == [215000.0, 180000.5]
    assert catalog["popularity"].tolist() == [55.0, 40.0]
    assert catalog["title"].tolist() == ["Canção", "Lied"]
    assert catalog.attrs["notes"] == []


@pytest.mark.parametrize("bad", ["abc", "1,234,567", "1.234,5"])
def test_european_csv_with_a_bad_value_still_names_it(tmp_path: Path, bad: str) -> None:
    text = f"{EURO_HEADER}\n{EURO_ROWS}".replace(";0,6;", f";{bad};")
    with pytest.raises(CatalogError) as caught:
        load_catalog(write(tmp_path, text))
    assert f"not numeric: danceability (e.g. '{bad}')" in str(caught.value)


def test_quoted_decimal_commas_in_a_comma_separated_file_are_read(tmp_path: Path) -> None:
    header = "title,artist,danceability,energy,valence,acousticness"
    catalog = load_catalog(write(tmp_path, f'{header}\nA,a,"0,7","0,8","0,5",0.1\n'))
    assert catalog.loc[0, ["danceability", "energy", "valence", "acousticness"]].tolist() == [
        0.7,
        0.8,
        0.5,
        0.1,
    ]


def test_quoted_thousands_in_a_comma_separated_file_are_not_decimals(tmp_path: Path) -> None:
    header = "title,artist,duration_ms,danceability,energy,valence,acousticness"
    catalog = load_catalog(write(tmp_path, f'{header}\nA,a,"215,000",0.7,0.8,0.5,0.1\n'))
    assert pd.isna(catalog.loc[0, "duration_ms"])  # not 215.0
    with pytest.raises(CatalogError, match=r"not numeric: energy \(e\.g\. '1,234'\)"):
        load_catalog(write(tmp_path, f'{header}\nA,a,1,0.7,"1,234",0.5,0.1\n', "t.csv"))


def test_rows_without_title_are_dropped_with_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, "title,artist,mood\n,x,Happy\nSong,y,Sad\n")
    catalog = load_catalog(path)
    assert catalog["title"].tolist() == ["Song"]
    assert any("without a title" in note for note in catalog.attrs["notes"])


def test_default_catalog_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "title,artist,mood\nSong,x,Calm\n", "mine.csv")
    monkeypatch.setenv("MOODLENS_CATALOG", str(path))
    assert load_default_catalog().attrs["name"] == "mine.csv"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("   \n\n", "is empty"),
        ("title,artist,mood\n", "no tracks"),
        ("title,mood\nSong,Happy\n", "missing required column(s): artist"),
        ("name,genre\nSong,pop\n", "missing required column(s): artist"),
        ("title,artist,album\nSong,x,y\n", "mood, genre or audio features"),
        ("title,artist,mood\nSong,x,Joyful\nB,y,angry\nC,z,Happy\n", "'Joyful' (1), 'angry' (1)"),
        (
            f"title,artist,{FEATURE_HEADER}\nA,B,0.5,high,0.7,0.1,0,0.1,0.05,-6,120\n",
            "not numeric: energy (e.g. 'high')",
        ),
        ('title,artist,mood\n"Song,x,Happy\nB,y,Sad\n', "not a readable CSV"),
        ("title,artist,mood\n,,\n", "no usable tracks"),
    ],
)
def test_bad_catalogs_raise_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(write(tmp_path, content))
    assert message in str(caught.value)


def test_binary_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    with pytest.raises(CatalogError, match="not a CSV text file"):
        load_catalog(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope.csv")
    with pytest.raises(CatalogError, match="is a folder"):
        load_catalog(tmp_path)


def test_missing_column_message_names_alternatives(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(write(tmp_path, "song_title,mood\nx,Happy\n"))
    message = str(caught.value)
    assert "title (or name/track_name)" in message and "artist (or artist_name)" in message


def test_catalog_error_is_a_value_error() -> None:
    assert issubclass(CatalogError, ValueError)


# --------------------------------------------------------------------------- mood labelling


def test_mood_classifier_cross_validates_well() -> None:
    from core.music.moods import train_mood_model

    model = train_mood_model(load_catalog(requires(data_moods_path())))
    assert model.n_train == 686 and set(model.features) == set(AUDIO_FEATURES)
    assert 0.7 < model.cv_accuracy <= 1.0  # about 0.80 for 4 balanced-ish moods
    assert model.cv_accuracy_std < 0.1


def test_label_fills_only_missing_moods(tmp_path: Path) -> None:
    from core.music.moods import label_moods, train_mood_model

    training = load_catalog(requires(data_moods_path()))
    model = train_mood_model(training)
    blank = training.head(40).copy()
    blank.loc[:19, "mood"] = pd.NA
    labelled = label_moods(blank, model)
    assert labelled["mood"].notna().all()
    assert (labelled.loc[20:, "mood"] == training.loc[20:39, "mood"]).all()
    assert (labelled.loc[20:, "mood_confidence"] == 1.0).all()
    predicted = labelled.loc[:19, "mood_confidence"]
    assert predicted.between(0.25, 1.0).all() and (predicted < 1.0).any()
    # Predictions agree with the hidden labels most of the time (training rows, so easy).
    assert (labelled.loc[:19, "mood"] == training.loc[:19, "mood"]).mean() >= 0.7
    # Labelling the labelled catalog again changes nothing: its guesses stay guesses.
    saved = tmp_path / "labelled.csv"
    labelled.to_csv(saved, index=False)
    again = label_moods(load_catalog(saved), model)
    assert again["mood"].tolist() == labelled["mood"].tolist()
    assert np.allclose(again["mood_confidence"], labelled["mood_confidence"])


def test_label_cli_writes_a_loadable_labelled_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from core.music.catalog import main

    source = requires(spotify_features_path())
    small = tmp_path / "small.csv"
    pd.read_csv(source, encoding="utf-8-sig", nrows=300).to_csv(small, index=False)
    out = tmp_path / "labelled.csv.gz"
    assert main(["label", "--in", str(small), "--out", str(out), "--folds", "3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert 0.7 < summary["cv_accuracy"] <= 1.0 and summary["predicted"] == summary["tracks"]
    labelled = load_catalog(out)
    assert labelled.attrs["format"] == "labelled"
    assert has_moods(labelled) and labelled["mood"].notna().all()
    assert labelled["mood_confidence"].between(0.25, 1.0).all()
    assert sum(summary["mood_counts"].values()) == len(labelled)


def test_label_cli_reports_unusable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.music.catalog import main

    requires(data_moods_path())
    starter_like = write(tmp_path, "title,artist,mood\nSong,x,Happy\n")
    assert main(["label", "--in", str(starter_like), "--out", str(tmp_path / "o.csv")]) == 2
    assert "no audio features" in capsys.readouterr().err
    assert main(["info", "--in", str(tmp_path / "missing.csv")]) == 2
    assert "not found" in capsys.readouterr().err


def test_an_empty_feature_column_is_a_catalog_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.music.catalog import main
    from core.music.moods import label_moods, train_mood_model

    model = train_mood_model(load_catalog(requires(data_moods_path())))
    empty_liveness = FEATURE_VALUES.split(",")
    empty_liveness[AUDIO_FEATURES.index("liveness")] = ""
    rows = "".join(f"Song {i},Artist {i},{','.join(empty_liveness)}\n" for i in range(5))
    path = write(tmp_path, f"title,artist,{FEATURE_HEADER}\n{rows}")
    catalog = load_catalog(path)
    assert catalog["liveness"].isna().all() and has_audio_features(catalog)
    with pytest.raises(CatalogError, match=r"column\(s\) liveness have no values"):
        label_moods(catalog, model)
    assert main(["label", "--in", str(path), "--out", str(tmp_path / "out.csv")]) == 2
    assert "liveness" in capsys.readouterr().err
    gappy = load_catalog(io.StringIO(f"title,artist,{FEATURE_HEADER}\nA,B,{FEATURE_VALUES}\n"))
    gappy = pd.concat([gappy, gappy.assign(title="C", tempo=np.nan)], ignore_index=True)
    with pytest.raises(CatalogError, match=r"tempo \(1 tracks\)"):
        label_moods(gappy, model)  # a frame not normalised by load_catalog: no median fill


@pytest.fixture()
def relabelled(tmp_path: Path) -> tuple[Path, int]:
    """A catalog labelled once (10 predicted moods, confidences below 1.0 kept as they are)
    with 4 of its given moods removed again: a second labelling predicts exactly those 4."""
    from core.music.moods import label_moods, train_mood_model

    training = load_catalog(requires(data_moods_path()))
    blank = training.head(30).copy()
    blank.loc[:9, "mood"] = pd.NA
    once = label_moods(blank, train_mood_model(training, folds=3))
    assert (once.loc[:9, "mood_confidence"] < 1.0).all()
    once.loc[20:23, "mood"] = pd.NA
    path = tmp_path / "relabel.csv"
    once.to_csv(path, index=False)
    return path, 4


def test_label_report_counts_the_moods_predicted_in_this_run(
    relabelled: tuple[Path, int], tmp_path: Path
) -> None:
    from core.music.moods import label_catalog_file

    path, hidden = relabelled
    summary = label_catalog_file(path, tmp_path / "out.csv", train=data_moods_path(), folds=3)
    assert summary["tracks"] == 30
    assert summary["predicted"] == hidden and summary["kept_existing_labels"] == 30 - hidden
    out = load_catalog(tmp_path / "out.csv")
    assert summary["mean_confidence_of_predictions"] == pytest.approx(
        out.loc[20:23, "mood_confidence"].mean(), abs=1e-4
    )


def test_dask_partition_summaries_count_this_runs_predictions(
    relabelled: tuple[Path, int],
) -> None:
    from core.music.moods import _label_partition, _partition_summary, train_mood_model

    path, hidden = relabelled
    model = train_mood_model(load_catalog(data_moods_path()), folds=3)
    labelled = _label_partition(pd.read_csv(path), model, False, path.name)
    summary = _partition_summary(labelled).iloc[0]
    assert summary["tracks"] == 30 and summary["predicted"] == hidden
    predicted = labelled.loc[20:23, "mood_confidence"]
    assert summary["confidence_sum"] == pytest.approx(predicted.sum())
    everything = _partition_summary(_label_partition(pd.read_csv(path), model, True, path.name))
    assert everything.iloc[0]["predicted"] == 30


def test_dask_labelling_writes_no_bookkeeping_column(
    relabelled: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """label_catalog_dask end to end on dask's synchronous scheduler (no worker processes)."""
    pytest.importorskip("distributed")
    import dask
    import dask.distributed

    from core.music.moods import label_catalog_dask

    class Cluster:
        def __init__(self, **kwargs: object) -> None:
            pass

        def close(self) -> None:
            pass

    class Client:
        def __init__(self, cluster: object) -> None:
            pass

        def scheduler_info(self) -> dict:
            return {"workers": {"one": {}}}

        def close(self) -> None:
            pass

    monkeypatch.setattr(dask.distributed, "LocalCluster", Cluster)
    monkeypatch.setattr(dask.distributed, "Client", Client)
    path, hidden = relabelled
    with dask.config.set(scheduler="synchronous"):
        summary = label_catalog_dask(path, tmp_path / "out", train=data_moods_path(), folds=3)
    assert summary["tracks"] == 30 and summary["predicted"] == hidden
    written = pd.read_parquet(tmp_path / "out")
    assert "_mood_predicted" not in written.columns and written["mood"].notna().all()


# --------------------------------------------------------------------------- years, Parquet


def test_starter_catalog_has_no_release_year_before_recorded_music() -> None:
    catalog = load_catalog(STARTER_CATALOG)
    years = catalog["year"].dropna()
    assert (years >= 1900).all(), years[years < 1900]
    # Classical works are dated by composition in `composed`, never in `year`.
    assert "composed" in catalog.columns
    composed = catalog[catalog["composed"].notna()]
    assert len(composed) >= 6 and (composed["genre"] == "classical").all()
    assert (catalog["year"].notna() | catalog["composed"].notna()).all()
    dated = composed[composed["year"].notna()]
    assert (dated["composed"] <= dated["year"]).all()
    assert int(catalog["composed"].min()) == 1722 and catalog["year"].isna().sum() == 6
    assert not any("predate recorded music" in note for note in catalog.attrs["notes"])


def test_year_before_recording_is_left_empty_with_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, "title,artist,year,mood\nPrelude,Bach,1722,Calm\nSong,x,1999,Sad\n")
    catalog = load_catalog(path)
    assert pd.isna(catalog.loc[0, "year"]) and catalog.loc[1, "year"] == 1999
    assert any("1722" in note and "composed" in note for note in catalog.attrs["notes"])
    both = write(tmp_path, "title,artist,year,composed,mood\nPrelude,Bach,,1722,Calm\n", "c.csv")
    assert load_catalog(both).loc[0, "composed"] == 1722


def test_parquet_file_folder_and_upload_load_like_the_csv(tmp_path: Path) -> None:
    source = requires(data_moods_path())
    expected = load_catalog(source)
    raw = pd.read_csv(source)
    raw.to_parquet(tmp_path / "moods.parquet", index=False)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, len(raw), 250)):
        raw.iloc[start : start + 250].to_parquet(folder / f"part.{i}.parquet", index=False)
    (folder / "_common_metadata").write_bytes(b"ignored")
    for loaded in (
        load_catalog(tmp_path / "moods.parquet"),
        load_catalog(folder),
        load_catalog(io.BytesIO((tmp_path / "moods.parquet").read_bytes()), name="up.parquet"),
    ):
        assert loaded.attrs["format"] == "data_moods"
        pd.testing.assert_frame_equal(loaded, expected, check_dtype=True)


def test_pyarrow_and_pandas_csv_parsers_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.music.catalog as catalog_module

    paths = [requires(data_moods_path()), requires(spotify_features_path()), STARTER_CATALOG]
    fast = [load_catalog(path) for path in paths]
    monkeypatch.setattr(catalog_module, "_read_csv_arrow", lambda raw, separator: None)
    for path, quick in zip(paths, fast, strict=True):
        slow = load_catalog(path)
        pd.testing.assert_frame_equal(quick, slow, check_dtype=True)
        assert quick.attrs == slow.attrs


def test_files_pyarrow_rejects_fall_back_to_pandas(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("title,artist,mood\nCaf\xe9,B\xe9b\xe9,Happy\n".encode("cp1252"))
    catalog = load_catalog(latin)
    assert catalog.loc[0, "title"] == "Café"
    assert any("Windows-1252" in note for note in catalog.attrs["notes"])
    ragged = load_catalog(write(tmp_path, "title,artist,mood,genre\nA,a,Sad\nB,b,Calm,pop\n"))
    assert ragged["genre"].tolist()[1] == "pop" and pd.isna(ragged["genre"].iloc[0])
    repeated = load_catalog(write(tmp_path, "title,artist,Title,mood\nA,a,X,Sad\n", "r.csv"))
    assert repeated.loc[0, "title"] == "A"

"""core.music.moods.label_catalog_dask: mood labels of a partitioned catalog on a Dask cluster
(two worker processes) equal the in-memory labeller's, from CSV globs and Parquet folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.music.catalog import (
    AUDIO_FEATURES,
    MOOD_CONFIDENCE,
    data_moods_path,
    load_catalog,
    main,
    spotify_features_path,
)

pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

ROWS = 3_000
PARTS = 3


def requires(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent (it lives in ../shared/data/music)")
    return path


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes, as a small real cluster would have."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as local,
        distributed.Client(local) as client,
    ):
        client.wait_for_workers(2)
        yield local


@pytest.fixture(scope="module")
def model():
    from core.music.moods import train_mood_model

    return train_mood_model(load_catalog(requires(data_moods_path())))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """3,000 raw Spotify rows (unique ids, every feature present) and the same as one CSV."""
    raw = pd.read_csv(requires(spotify_features_path()), encoding="utf-8-sig")
    raw = raw.drop_duplicates("track_id").dropna(subset=list(AUDIO_FEATURES)).head(ROWS)
    raw = raw.reset_index(drop=True)
    folder = tmp_path_factory.mktemp("catalog")
    whole = folder / "whole.csv"
    raw.to_csv(whole, index=False)
    return raw, whole


def in_memory_labels(whole: Path, model) -> pd.DataFrame:
    from core.music.moods import label_moods

    return label_moods(load_catalog(whole), model).set_index("track_id")


def assert_same_labels(dask_out: Path, expected: pd.DataFrame) -> None:
    labelled = pd.read_parquet(dask_out)
    assert len(labelled) == len(expected)
    got = labelled.set_index("track_id").loc[expected.index]
    assert (got["mood"] == expected["mood"]).all()
    assert np.allclose(got[MOOD_CONFIDENCE], expected[MOOD_CONFIDENCE], rtol=0, atol=1e-12)
    assert (got["title"] == expected["title"]).all()
    # The folder is a catalog the app loads like any other.
    assert load_catalog(dask_out).attrs["format"] == "labelled"


def test_dask_labels_of_a_csv_glob_equal_the_in_memory_labels(
    cluster, model, source, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, whole = source
    for i, part in enumerate(np.array_split(np.arange(len(raw)), PARTS)):
        raw.iloc[part].to_csv(tmp_path / f"part-{i}.csv", index=False)
    out = tmp_path / "labelled"
    code = main(
        [
            "label", "--engine", "dask", "--scheduler", cluster.scheduler_address,
            "--in", str(tmp_path / "part-*.csv"), "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"] == "dask" and summary["workers"] == 2
    assert summary["tracks"] == summary["predicted"] == ROWS
    assert summary["partitions"] >= PARTS and summary["rows_per_s"] > 0
    assert sorted(p.name for p in out.glob("*.parquet"))  # partitioned Parquet
    expected = in_memory_labels(whole, model)
    assert_same_labels(out, expected)
    assert summary["mood_counts"] == expected["mood"].value_counts().to_dict()


def test_dask_labels_of_a_parquet_folder_equal_the_in_memory_labels(
    cluster, model, source, tmp_path: Path
) -> None:
    from core.music.moods import label_catalog_dask

    raw, whole = source
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(raw)), PARTS)):
        raw.iloc[part].to_parquet(parts / f"part-{i}.parquet", index=False)
    out = tmp_path / "labelled"
    summary = label_catalog_dask(parts, out, scheduler=cluster.scheduler_address)
    assert summary["tracks"] == ROWS
    assert_same_labels(out, in_memory_labels(whole, model))


def test_dask_refuses_a_used_output_folder(cluster, source, tmp_path: Path) -> None:
    from core.music.catalog import CatalogError
    from core.music.moods import label_catalog_dask

    _, whole = source
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(CatalogError, match="not an empty folder"):
        label_catalog_dask(whole, tmp_path, scheduler=cluster.scheduler_address)
    with pytest.raises(CatalogError, match="No catalog files match"):
        label_catalog_dask(
            tmp_path / "none-*.csv", tmp_path / "new", scheduler=cluster.scheduler_address
        )

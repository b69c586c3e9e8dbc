"""Mood labels from audio features: a classifier trained on a labelled catalog, and labelling.

`train_mood_model` fits a scaled logistic regression from audio features to mood on a catalog
with moods (Kaggle's data_moods.csv); `label_moods` gives every unlabelled track of another
catalog the predicted mood and its probability as ``mood_confidence``; `label_catalog_file` does
both for files (what ``python -m core.music.catalog label --in X --out Y`` runs).

`label_catalog_dask` does the same past one machine's memory: the catalog is a glob of CSV files
or a (folder of) Parquet, each partition is normalised and labelled by the same trained model
with `dask.dataframe.map_partitions` on a `distributed` cluster (a `LocalCluster` by default, or
a running ``dask scheduler``), and the result is written as partitioned Parquet
(``label --engine dask``). Within a partition it equals the in-memory labeller; across
partitions duplicate track ids are kept and missing features are filled with the partition's
median, not the whole catalog's.
"""

from __future__ import annotations

import glob
import gzip
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.labels import MOODS
from core.music.catalog import (
    CORE_FEATURES,
    MOOD_CONFIDENCE,
    PARQUET_SUFFIXES,
    CatalogError,
    _parquet_files,
    _read_frame,
    _wanted_column,
    data_moods_path,
    feature_columns,
    has_audio_features,
    has_moods,
    load_catalog,
    normalise_frame,
)


@dataclass(frozen=True)
class MoodModel:
    """A mood classifier over audio features and its cross-validated accuracy."""

    pipeline: Any
    features: tuple[str, ...]
    cv_accuracy: float
    cv_accuracy_std: float
    n_train: int
    trained_on: str

    def predict(self, catalog: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """Predicted mood and its probability (the confidence) for every track."""
        missing = [f for f in self.features if f not in catalog.columns]
        if missing:
            raise CatalogError(
                f"Cannot label moods: the catalog lacks audio feature(s) {', '.join(missing)} "
                "that the mood classifier needs."
            )
        self._check_values(catalog)
        from threadpoolctl import threadpool_limits

        values = catalog[list(self.features)].to_numpy(dtype="float64")
        with threadpool_limits(limits=1):  # BLAS threads stall on a busy CPU, gain little here
            proba = self.pipeline.predict_proba(values)
        classes = np.asarray(self.pipeline.classes_)
        best = proba.argmax(axis=1)
        moods = pd.Series(classes[best], index=catalog.index, dtype="str")
        confidence = pd.Series(proba[np.arange(len(best)), best], index=catalog.index)
        return moods, confidence

    def _check_values(self, catalog: pd.DataFrame) -> None:
        """CatalogError, naming the columns, when a feature the classifier needs has no value
        for some tracks (scikit-learn would raise a bare ValueError on the NaN)."""
        name = catalog.attrs.get("name", "The catalog")
        gaps = catalog[list(self.features)].isna().sum()
        empty = [f for f in self.features if gaps[f] == len(catalog)]
        if empty:
            raise CatalogError(
                f"Cannot label moods: {name}'s audio-feature column(s) {', '.join(empty)} "
                f"have no values, and the mood classifier (trained on {self.trained_on}) needs "
                "them. Fill in those columns, or label with a classifier trained on a catalog "
                "without them (--train)."
            )
        gappy = [f"{f} ({int(gaps[f])} tracks)" for f in self.features if gaps[f]]
        if gappy:
            raise CatalogError(
                f"Cannot label moods: {name} has tracks without a value of {', '.join(gappy)}, "
                "which the mood classifier needs. Fill them in, or read the catalog with "
                "load_catalog, which fills such gaps with the column median."
            )


def train_mood_model(labelled: pd.DataFrame, folds: int = 5, seed: int = 0) -> MoodModel:
    """Fit a scaled multinomial logistic regression from audio features to mood.

    Logistic regression scores about as well as random forests, gradient boosting or an SVM on
    data_moods.csv (~0.80 five-fold accuracy for each), gives calibrated probabilities for the
    confidence, and predicts 200k tracks in a blink.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    name = labelled.attrs.get("name", "training catalog")
    if not has_moods(labelled) or not has_audio_features(labelled):
        raise CatalogError(
            f"{name} cannot train the mood classifier: it needs a mood column and the audio "
            f"features {', '.join(CORE_FEATURES)}. data_moods.csv is such a catalog."
        )
    features = tuple(feature_columns(labelled))
    rows = labelled[labelled["mood"].notna()]
    counts = rows["mood"].value_counts()
    if len(counts) < 2 or counts.min() < folds:
        raise CatalogError(
            f"{name} has too few labelled tracks to train on: need at least {folds} tracks "
            f"in each of two or more moods, got {counts.to_dict()}."
        )
    values = rows[list(features)].to_numpy(dtype="float64")
    moods = rows["mood"].to_numpy(dtype=str)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1):  # BLAS threads only slow a model this small
        scores = cross_val_score(pipeline, values, moods, cv=splitter)
        pipeline.fit(values, moods)
    return MoodModel(
        pipeline=pipeline,
        features=features,
        cv_accuracy=float(scores.mean()),
        cv_accuracy_std=float(scores.std()),
        n_train=len(rows),
        trained_on=str(name),
    )


def label_moods(catalog: pd.DataFrame, model: MoodModel, overwrite: bool = False) -> pd.DataFrame:
    """A copy of `catalog` where unlabelled tracks get the model's mood and confidence.

    Tracks that already have a mood keep it unless `overwrite`, with the confidence the catalog
    gives it (a catalog labelled before keeps its predictions' confidences), else 1.0.
    """
    return _label(catalog, model, overwrite)[0]


def _label(
    catalog: pd.DataFrame, model: MoodModel, overwrite: bool
) -> tuple[pd.DataFrame, pd.Series]:
    """`label_moods`, and which rows got a predicted mood in this run (True) rather than
    keeping the one they had: what the label reports count. A confidence below 1.0 does not
    tell: moods kept from an earlier labelling have one too."""
    if not has_audio_features(catalog):
        raise CatalogError(
            f"{catalog.attrs.get('name', 'The catalog')} has no audio features "
            f"({', '.join(CORE_FEATURES)}), so its moods cannot be predicted."
        )
    labelled = catalog.copy()
    predicted, confidence = model.predict(labelled)
    to_fill = labelled["mood"].isna() if not overwrite else pd.Series(True, index=labelled.index)
    labelled["mood"] = labelled["mood"].where(~to_fill, predicted).astype("str")
    known = labelled[MOOD_CONFIDENCE].fillna(1.0) if MOOD_CONFIDENCE in labelled else 1.0
    labelled[MOOD_CONFIDENCE] = confidence.where(to_fill, known)
    labelled.attrs = dict(catalog.attrs)
    labelled.attrs["notes"] = [
        *catalog.attrs.get("notes", []),
        f"Predicted the mood of {int(to_fill.sum())} track(s) from audio features "
        f"(classifier cross-validated accuracy {model.cv_accuracy:.1%}).",
    ]
    return labelled, to_fill


def _classifier_report(model: MoodModel, folds: int) -> dict:
    """What the label reports say about the classifier, whichever engine labelled."""
    return {
        "trained_on": model.trained_on,
        "n_train": model.n_train,
        "classifier": "StandardScaler + LogisticRegression (multinomial)",
        "features": list(model.features),
        "cv_folds": folds,
        "cv_accuracy": round(model.cv_accuracy, 4),
        "cv_accuracy_std": round(model.cv_accuracy_std, 4),
    }


def label_catalog_file(
    input_path: str | Path,
    output_path: str | Path,
    train: str | Path | None = None,
    folds: int = 5,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Label the moods of catalog `input_path` into `output_path`; a JSON-ready summary.

    Trains on `train` (default: the shared data_moods.csv). Raises CatalogError.
    """
    model = _trained_model(train, folds)
    start = time.perf_counter()
    catalog = load_catalog(input_path)
    labelled, predicted = _label(catalog, model, overwrite)
    out_path = Path(output_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.suffix.lower() in PARQUET_SUFFIXES:
        labelled.to_parquet(out_path, index=False)
    else:
        labelled.to_csv(out_path, index=False)
    seconds = time.perf_counter() - start
    return {
        "engine": "pandas",
        "input": str(input_path),
        "output": str(out_path),
        "seconds": round(seconds, 3),
        "rows_per_s": round(len(labelled) / seconds) if seconds > 0 else None,
        "format": catalog.attrs["format"],
        "tracks": len(labelled),
        "predicted": int(predicted.sum()),
        "kept_existing_labels": int(len(labelled) - predicted.sum()),
        **_classifier_report(model, folds),
        "mood_counts": {m: int(n) for m, n in labelled["mood"].value_counts().items()},
        "mean_confidence_of_predictions": round(
            float(labelled.loc[predicted, MOOD_CONFIDENCE].mean()), 4
        )
        if predicted.any()
        else None,
        "notes": labelled.attrs["notes"],
    }


def _trained_model(train: str | Path | None, folds: int) -> MoodModel:
    """The mood classifier trained on `train` (default: the shared data_moods.csv)."""
    train_path = Path(train) if train else data_moods_path()
    if not train_path.exists():
        raise CatalogError(
            f"No labelled catalog to train on at {train_path}. Pass --train with a CSV that has "
            "a mood column and audio features (e.g. Kaggle's data_moods.csv)."
        )
    return train_mood_model(load_catalog(train_path), folds=folds)


# --------------------------------------------------------------------------- Dask

# A column of each labelled partition while the job runs: True where this run predicted the
# mood (`_label`'s provenance, for the summary); dropped before the Parquet files are written.
_PREDICTED = "_mood_predicted"


def _label_partition(
    frame: pd.DataFrame, model: MoodModel, overwrite: bool, name: str
) -> pd.DataFrame:
    """One partition of raw rows, normalised and labelled (what every Dask task runs)."""
    catalog = normalise_frame(frame, name, allow_empty=True)
    if catalog.empty:
        labelled = catalog.copy()
        labelled[MOOD_CONFIDENCE] = pd.Series(dtype="float64")
        predicted = pd.Series(dtype="bool")
    else:
        labelled, predicted = _label(catalog, model, overwrite)
    labelled[_PREDICTED] = predicted.astype("bool")
    labelled.attrs = {}  # notes stay with the driver; Parquet gets plain columns
    return labelled


def _partition_summary(labelled: pd.DataFrame) -> pd.DataFrame:
    """One row of counts for a labelled partition (summed by the driver)."""
    predicted = labelled[_PREDICTED].astype("bool")
    row: dict[str, float] = {
        "tracks": len(labelled),
        "predicted": int(predicted.sum()),
        "confidence_sum": float(labelled.loc[predicted, MOOD_CONFIDENCE].sum()),
    }
    counts = labelled["mood"].value_counts()
    row.update({f"mood_{m}": int(counts.get(m, 0)) for m in MOODS})
    return pd.DataFrame([row])


def _catalog_inputs(source: str | os.PathLike) -> tuple[str, list[str]]:
    """('parquet' or 'csv', the files) of a glob, a file, or a folder of Parquet or CSV files.

    Remote URLs (s3://..., gs://...: readable by every worker) pass through to Dask as given.
    """
    text = os.fspath(source)
    if "://" in text:
        kind = "parquet" if text.rstrip("/").lower().endswith(PARQUET_SUFFIXES) else "csv"
        return kind, [text]
    path = Path(text)
    if path.is_dir():
        files = [str(p) for p in _parquet_files(path)]
        if files:
            return "parquet", files
        files = sorted(str(p) for p in path.iterdir() if p.name.lower().endswith((".csv", ".gz")))
    else:
        files = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        files = [f for f in files if Path(f).is_file()]
    if not files:
        raise CatalogError(
            f"No catalog files match {text}. Pass a CSV or Parquet file, a glob such as "
            "'catalog/part-*.csv', or a folder of Parquet files."
        )
    parquet = [f.lower().endswith(PARQUET_SUFFIXES) for f in files]
    if any(parquet) and not all(parquet):
        raise CatalogError(f"{text} mixes Parquet and CSV files; label one kind at a time.")
    return ("parquet" if all(parquet) else "csv"), files


def _parse_block(block: bytes, header: bytes, name: str) -> pd.DataFrame:
    """One block of CSV lines (the file's header prepended unless the block starts the file),
    parsed exactly as `load_catalog` parses a whole file (pyarrow, else pandas)."""
    data = block if block.startswith(header) else header + block
    frame = _read_frame(data, name, [])
    return frame


def _first_line(path: str) -> bytes | None:
    """The header line (with its newline) of a local CSV file, gzipped or not."""
    if "://" in path:
        return None
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        return handle.readline()


def read_partitioned_catalog(source: str | os.PathLike, blocksize: str | int = "64MiB"):
    """A Dask dataframe of a catalog's raw rows (only the columns `load_catalog` uses).

    Parquet: `dask.dataframe.read_parquet`. CSV: blocks of whole lines (`dask.bytes.read_bytes`;
    gzipped files are one block each), each parsed by `load_catalog`'s own reader, so a partition
    is typed exactly as the file would be in memory. Partitions may type a column differently
    (e.g. a block of whole-number tempos): `normalise_frame` evens that out afterwards.
    """
    import dask
    import dask.dataframe as dd
    from dask.bytes import read_bytes

    kind, files = _catalog_inputs(source)
    if kind == "parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(files[0]).names if "://" not in files[0] else None
        columns = [c for c in names if _wanted_column(c)] if names else None
        return dd.read_parquet(files[0] if len(files) == 1 else files, columns=columns or None)
    compressed = any(f.lower().endswith(".gz") for f in files)
    sample, blocks = read_bytes(
        files,
        delimiter=b"\n",
        blocksize=None if compressed else blocksize,
        sample="64 KiB",
        compression="gzip" if compressed else None,
    )
    sample_header = sample.split(b"\n", 1)[0] + b"\n"
    parse = dask.delayed(_parse_block, pure=True)
    parts = []
    for path, file_blocks in zip(files, blocks, strict=True):
        header = _first_line(path) or sample_header
        name = Path(path).name
        parts.extend(parse(block, header, name) for block in file_blocks)
    meta = _parse_block(sample_header + b"", sample_header, "sample").iloc[:0]
    return dd.from_delayed(parts, meta=meta, verify_meta=False)


def label_catalog_dask(
    input_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    train: str | Path | None = None,
    folds: int = 5,
    overwrite: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    partitions: int | None = None,
) -> dict[str, Any]:
    """Label a partitioned catalog with Dask into a folder of Parquet files; a JSON-ready summary.

    `scheduler`: the address of a running ``dask scheduler`` (e.g. tcp://10.0.0.5:8786), else a
    `LocalCluster` of `workers` processes (default: one a CPU) with one thread each. Every worker
    must be able to read `input_path` and write `output_dir` (shared disk or object store).
    `partitions`: repartition to at least this many (default: two a worker) so every worker has
    work even when the input is one big file.
    """
    from dask.distributed import Client, LocalCluster

    out = Path(output_dir) if "://" not in os.fspath(output_dir) else None
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CatalogError(
            f"{out} already exists and is not an empty folder. Choose a new output folder "
            "(the labelled catalog is written there as part.*.parquet)."
        )
    _catalog_inputs(input_path)  # fail on a glob without files before training anything
    model = _trained_model(train, folds)
    name = Path(os.fspath(input_path)).name
    cluster = None
    start = time.perf_counter()
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
    try:
        started_s = time.perf_counter() - start
        n_workers = len(client.scheduler_info().get("workers", {})) or 1
        raw = read_partitioned_catalog(input_path)
        wanted = max(partitions or 2 * n_workers, 1)
        if raw.npartitions < wanted:
            raw = raw.repartition(npartitions=wanted)
        sample = raw.partitions[0].head(200, compute=True)
        meta = _label_partition(sample, model, overwrite, name).iloc[:0]
        labelled = raw.map_partitions(_label_partition, model, overwrite, name, meta=meta)
        summary_meta = _partition_summary(meta).iloc[:0]
        summaries = labelled.map_partitions(_partition_summary, meta=summary_meta)
        write = labelled.drop(columns=[_PREDICTED]).to_parquet(
            os.fspath(output_dir), write_index=False, compute=False
        )
        import dask

        label_start = time.perf_counter()
        _, per_partition = dask.compute(write, summaries)
        seconds = time.perf_counter() - label_start
        workers_used = n_workers
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    totals = per_partition.sum()
    tracks, predicted = int(totals["tracks"]), int(totals["predicted"])
    return {
        "engine": "dask",
        "scheduler": scheduler or f"LocalCluster({workers_used} processes x 1 thread)",
        "input": os.fspath(input_path),
        "output": os.fspath(output_dir),
        "partitions": int(raw.npartitions),
        "workers": workers_used,
        "cluster_start_s": round(started_s, 3),
        "seconds": round(seconds, 3),
        "rows_per_s": round(tracks / seconds) if seconds > 0 else None,
        "tracks": tracks,
        "predicted": predicted,
        "kept_existing_labels": tracks - predicted,
        **_classifier_report(model, folds),
        "mood_counts": {m: int(totals[f"mood_{m}"]) for m in MOODS if totals[f"mood_{m}"]},
        "mean_confidence_of_predictions": round(float(totals["confidence_sum"]) / predicted, 4)
        if predicted
        else None,
        "notes": [
            "Duplicate track ids are dropped and missing audio features filled with the median "
            "within each partition only."
        ],
    }

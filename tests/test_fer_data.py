"""core.training.fer_data: readers, the carved validation split, duplicates, class weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.labels import EMOTIONS
from core.training.fer_data import (
    FerDataError,
    carve_validation,
    class_weights,
    load_fer,
    unseen_mask,
)


def test_shared_npz_has_the_documented_splits(fer):
    x_train, _y_train = fer.get("train")
    x_test, y_test = fer.get("test")
    assert x_train.shape == (28709, 48, 48) and x_train.dtype == np.uint8
    assert x_test.shape == (3589, 48, 48)
    assert np.bincount(y_test, minlength=7).tolist() == [467, 56, 496, 895, 653, 415, 607]


def test_carved_validation_is_stratified_disjoint_and_seeded(fer):
    _, y = fer.get("train")
    train_idx, val_idx = carve_validation(y, 0.1, seed=7)
    assert not set(train_idx) & set(val_idx)
    assert len(train_idx) + len(val_idx) == len(y)
    share = np.bincount(y[val_idx], minlength=7) / np.bincount(y, minlength=7)
    assert np.allclose(share, 0.1, atol=0.01)
    again_train, again_val = carve_validation(y, 0.1, seed=7)
    assert np.array_equal(val_idx, again_val) and np.array_equal(train_idx, again_train)
    assert not np.array_equal(val_idx, carve_validation(y, 0.1, seed=8)[1])


def test_publictest_duplicates_of_training_are_found(fer):
    x_test, _ = fer.get("test")
    unseen = unseen_mask(x_test, [fer.get("train")[0]])
    assert (~unseen).sum() == 280  # documented in ../shared/data/fer2013/README.md


def test_kaggle_csv_reader(tmp_path, public_test):
    x, y = public_test
    rows = [
        {
            "emotion": int(y[i]),
            "pixels": " ".join(map(str, x[i].ravel())),
            "Usage": "Training" if i < 6 else "PublicTest",
        }
        for i in range(10)
    ]
    path = tmp_path / "fer2013.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    splits = load_fer(path)
    assert np.array_equal(splits.get("train")[0], x[:6])
    assert np.array_equal(splits.get("test")[1], y[6:10])


def test_image_folder_reader(tmp_path, public_test):
    import cv2

    x, y = public_test
    for i in range(8):
        folder = tmp_path / ("train" if i < 5 else "test") / EMOTIONS[y[i]]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), x[i])
    splits = load_fer(tmp_path)
    assert len(splits.get("train")[0]) == 5 and len(splits.get("test")[0]) == 3
    assert sorted(splits.get("test")[1].tolist()) == sorted(y[5:8].tolist())


def test_npz_with_only_a_test_set(tmp_path, public_test):
    x, y = public_test
    path = tmp_path / "faces.npz"
    np.savez(path, x_test=x[:20], y_test=y[:20])
    splits = load_fer(path)
    assert list(splits.arrays) == ["test"]
    with pytest.raises(FerDataError, match="no 'train' split"):
        splits.get("train")


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(FerDataError, match="does not exist"):
        load_fer(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((3, 32, 32), np.uint8), y_train=np.zeros(3))
    with pytest.raises(FerDataError, match="48, 48"):
        load_fer(bad)
    labels = tmp_path / "labels.npz"
    np.savez(labels, x_train=np.zeros((2, 48, 48), np.uint8), y_train=np.array([0, 9]))
    with pytest.raises(FerDataError, match="labels must be"):
        load_fer(labels)


def test_class_weights_favour_rare_classes():
    labels = np.array([0] * 100 + [1] * 10 + [2] * 50)
    weights = class_weights(labels, power=0.5)
    assert weights[1] > weights[2] > weights[0]
    assert np.isclose(np.mean([weights[c] for c in labels]), 1.0)
    flat = class_weights(labels, power=0.0)
    assert np.allclose([flat[0], flat[1], flat[2]], 1.0)


def test_unseen_mask_finds_exact_byte_duplicates_in_any_reference_array():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (30, 48, 48), dtype=np.uint8)
    other = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    val = rng.integers(0, 256, (10, 48, 48), dtype=np.uint8)
    val[2], val[7], val[9] = train[4], train[29], other[1]
    val[5] = train[0]
    val[5, 10, 10] ^= 1  # one pixel off: not a duplicate
    val[6] = val[3]  # repeated within validation only: still unseen
    assert np.flatnonzero(~unseen_mask(val, [train])).tolist() == [2, 7]
    assert np.flatnonzero(~unseen_mask(val, [train, other])).tolist() == [2, 7, 9]
    assert unseen_mask(val, []).all() and unseen_mask(val[:0], [train]).shape == (0,)

"""core.training.evaluate: metric arithmetic and the CLI's JSON on a test-only npz."""

from __future__ import annotations

import json

import numpy as np

from core.labels import EMOTIONS
from core.training.evaluate import classification_metrics, main


def test_metrics_match_hand_computation():
    y_true = np.array([0, 0, 1, 1, 3, 3])
    y_pred = np.array([0, 1, 1, 1, 3, 0])
    probs = np.eye(7)[y_pred]
    m = classification_metrics(y_true, probs)
    assert m["accuracy"] == 4 / 6
    angry = m["per_class"]["angry"]
    assert angry["precision"] == 0.5 and angry["recall"] == 0.5
    disgust = m["per_class"]["disgust"]
    assert disgust["precision"] == 2 / 3 and disgust["recall"] == 1.0
    assert m["confusion_matrix"][3] == [1, 0, 0, 1, 0, 0, 0]
    # Macro-F1 averages only the classes present in y_true (angry, disgust, happy).
    f1 = [angry["f1"], disgust["f1"], m["per_class"]["happy"]["f1"]]
    assert np.isclose(m["macro_f1"], np.mean(f1))


def test_cli_on_a_test_only_npz(tmp_path, public_test, capsys):
    from core.emotion.cards import default_model_path

    x, y = public_test
    path = tmp_path / "faces.npz"
    np.savez(path, x_test=x[:64], y_test=y[:64])
    main(
        [
            "--model",
            str(default_model_path()),
            "--data",
            str(path),
            "--split",
            "test",
            "--json",
            "--tta",
            "flip",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 64 and 0.0 <= result["accuracy"] <= 1.0
    assert set(result["per_class"]) == set(EMOTIONS)
    assert np.array(result["confusion_matrix"]).sum() == 64
    assert result["latency"]["ms_per_face_batch1"] > 0


def test_tencrop_views_are_corner_and_centre_crops_and_their_mirrors():
    from core.training.evaluate import TENCROP_SIZE, tencrop_views

    faces = np.zeros((3, 48, 48), np.uint8)
    faces[:, :2, :2] = 255  # a bright top-left corner only the top-left crop keeps
    views = tencrop_views(faces)
    assert len(views) == 10 and all(v.shape == faces.shape for v in views)
    for original, mirror in zip(views[::2], views[1::2], strict=True):
        np.testing.assert_array_equal(mirror, original[:, :, ::-1])
    corner_brightness = [v[:, :2, :2].mean() for v in views[::2]]
    assert corner_brightness[0] > 100 and max(corner_brightness[1:]) == 0
    assert TENCROP_SIZE < 48


def test_tencrop_tta_averages_the_models_answers_over_the_ten_views(shipped_model, public_test):
    from core.training.evaluate import predict_with_tta, tencrop_views

    x = public_test[0][:16]
    averaged = predict_with_tta(shipped_model, x, "tencrop")
    by_view = [shipped_model.predict_batched(np.ascontiguousarray(v)) for v in tencrop_views(x)]
    np.testing.assert_allclose(averaged, np.mean(by_view, axis=0), atol=1e-6)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, atol=1e-4)
    assert not np.allclose(averaged, predict_with_tta(shipped_model, x, "none"), atol=1e-3)

"""core.training.evaluate: metric arithmetic and the CLI's JSON on a test-only npz."""

from __future__ import annotations

import json

import numpy as np
import pytest

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


def _run_with_duplicates(tmp_path, public_test):
    """A run folder and a small npz whose carved validation holds copies of training faces."""
    from dataclasses import asdict

    from core.training.fer_data import carve_validation
    from core.training.recipe import TrainConfig

    x, y = public_test
    x_train, y_train, x_test, y_test = x[:300].copy(), y[:300], x[300:340], y[300:340]
    train_idx, val_idx = carve_validation(y_train, 0.1, 1234)
    for k in range(4):  # validation faces that are byte-identical to training faces
        x_train[val_idx[3 * k]] = x_train[train_idx[5 * k + 1]]
    data = tmp_path / "faces.npz"
    np.savez(data, x_train=x_train, y_train=y_train, x_val=x_test, y_val=y_test)
    config = asdict(TrainConfig(model="cnn", data=str(data), name="dup", epochs=2))
    run_dir = tmp_path / "runs" / "dup"
    run_dir.mkdir(parents=True)
    state = {"config": config, "epoch": 2, "best_epoch": 2, "history": [], "cpu_seconds": 1.0,
             "wall_seconds": 1.0, "finished": True, "split": {"train": 270, "val": 30}}  # fmt: skip
    (run_dir / "state.json").write_text(json.dumps(state))
    return data, run_dir, x_train[train_idx], x_train[val_idx], y_train[val_idx]


def test_the_card_reports_validation_without_faces_training_saw_and_validation_tta(
    tmp_path, public_test
):
    import shutil

    from core.emotion.model import EmotionModel
    from core.paths import MODELS_DIR
    from core.training.evaluate import evaluate, load_split, write_card

    data, run_dir, x_seen, x_val, y_val = _run_with_duplicates(tmp_path, public_test)
    model_path = tmp_path / "models" / "dup.npz"
    model_path.parent.mkdir()
    shutil.copy(MODELS_DIR / "cnn.npz", model_path)
    # Written over the card this run was promoted into: the promotion's story stays.
    promoted = {"trained_as": "dup", "previous_runs": [{"status": "run 1"}], "pilot": {"p": 1}}
    model_path.with_suffix(".json").write_text(json.dumps(promoted))
    card = json.loads(write_card(model_path, run_dir, str(data)).read_text())
    assert {k: card[k] for k in promoted} == promoted and card["accuracy_pilot"] is None
    metrics = card["metrics"]

    seen = {face.tobytes() for face in x_seen}
    unseen = np.array([face.tobytes() not in seen for face in x_val])
    assert (~unseen).sum() >= 4
    model = EmotionModel.load(model_path)
    expected = evaluate(model, x_val[unseen], y_val[unseen])
    assert metrics["val_unseen"]["n"] == unseen.sum() == card["data"]["counts"]["val_unseen"]
    assert metrics["val_unseen"]["duplicates_of_training"] == (~unseen).sum()
    assert metrics["val_unseen"]["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)
    assert metrics["val"]["n"] == len(x_val)
    x_unseen, y_unseen = load_split(data, "val_unseen")
    assert np.array_equal(x_unseen, x_val[unseen]) and np.array_equal(y_unseen, y_val[unseen])
    # The TTA choice can be made on validation: flip and ten-crop there as on PublicTest.
    for tta in ("flip", "tencrop"):
        want = evaluate(model, x_val, y_val, tta)["accuracy"]
        assert metrics[f"val_tta_{tta}"]["accuracy"] == pytest.approx(want, abs=1e-6)
        assert metrics[f"val_unseen_tta_{tta}"]["n"] == unseen.sum()
        assert f"test_tta_{tta}" in metrics
    assert not list(model_path.parent.glob("*.tmp"))


def test_a_card_counts_the_cpu_hours_of_attempts_whose_checkpoints_were_lost(tmp_path):
    from core.training.evaluate import lost_attempts_fields

    state = {"config": {"name": "run3"}, "cpu_seconds": 3600.0 * 20}
    assert lost_attempts_fields(state, tmp_path) == {}
    record = {"epochs_done": 25, "best_val_accuracy": 0.618, "cpu_hours": 8.5}
    (tmp_path / "run3_attempt1.json").write_text(json.dumps(record))
    (tmp_path / "run3_attempt2.json").write_text(json.dumps({**record, "cpu_hours": 3.5}))
    (tmp_path / "run3_progress.json").write_text(json.dumps({**record, "cpu_hours": 99}))
    (tmp_path / "other_attempt1.json").write_text(json.dumps({**record, "cpu_hours": 99}))
    (tmp_path / "run3_attempt3.json").write_text("{not json")
    fields = lost_attempts_fields(state, tmp_path)
    assert [a["record"] for a in fields["lost_attempts"]] == [
        "benchmarks/results/run3_attempt1.json",
        "benchmarks/results/run3_attempt2.json",
    ]
    assert fields["cpu_hours_including_lost"] == pytest.approx(20 + 8.5 + 3.5)


def test_a_card_keeps_only_the_promotion_of_its_own_run():
    from core.training.evaluate import keep_promotion

    card = {"name": "resnet50v2", "pilot": {"new": 1}, "accuracy_pilot": None}
    other = {"trained_as": "resnet50v2_64px", "previous_runs": [{}], "accuracy_pilot": {"a": 1}}
    assert keep_promotion(card, other, "resnet50v2_96px") == card  # another run's story
    assert keep_promotion(card, None, "resnet50v2_96px") == card
    own = {**other, "trained_as": "resnet50v2_96px", "pilot": {"old": 1}}
    kept = keep_promotion(card, own, "resnet50v2_96px")
    assert kept["previous_runs"] == [{}] and kept["pilot"] == {"new": 1}  # its own pilot wins
    assert kept["accuracy_pilot"] == {"a": 1} and kept["trained_as"] == "resnet50v2_96px"

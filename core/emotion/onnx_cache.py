"""Serve shipped models without TensorFlow: each `.npz`'s ONNX graph, cached on this machine.

    model = load_for_serving(path)            # ONNX Runtime only, when the cache has it
    python -m core.emotion.onnx_cache [--all | PATH...]   # build it (default: the app's model)

Importing TensorFlow and rebuilding a Keras model costs a fresh server ~4 s of CPU before
its first label, although inference runs on ONNX Runtime anyway (core.emotion.onnx_runtime).
The first load of a model converts it (checked against Keras, as always) and writes
`<cache>/<name>-<sha256 of the .npz and the converter>.onnx`; later loads read only that. A
changed `.npz` (or converter) gets a new file; a cache file that cannot be read is rebuilt.
The cache is the git-ignored `.cache/models/` (MOODLENS_CACHE_DIR to move it); nothing leaves
the machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
from pathlib import Path

import numpy as np

from core.emotion.model import EmotionModel, ModelLoadError
from core.labels import NUM_EMOTIONS
from core.paths import REPO_ROOT

log = logging.getLogger(__name__)
DEFAULT_CACHE = REPO_ROOT / ".cache" / "models"


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    value = env.get("MOODLENS_CACHE_DIR", "").strip()
    return Path(value).expanduser() / "models" if value else DEFAULT_CACHE


# The converter that writes the graphs: a change to it (a fix) makes every cached graph stale.
CONVERTER = Path(__file__).with_name("onnx_runtime.py")
# What else makes a graph: the architectures a model file's spec names (built by Keras), and
# the libraries that build, convert and run it. A change to any needs the parity check again.
ARCHITECTURES = Path(__file__).with_name("architectures.py")
GRAPH_LIBRARIES = ("keras", "onnx", "onnxruntime")


def cache_file(path: Path, folder: Path) -> Path:
    """Where the ONNX graph of the model at `path` (this exact content, built by these
    architectures and libraries, converted by this exact converter) is cached."""
    digest = hashlib.sha256(Path(path).read_bytes())
    digest.update(CONVERTER.read_bytes())
    digest.update(ARCHITECTURES.read_bytes())
    digest.update(" ".join(_version(name) for name in GRAPH_LIBRARIES).encode())
    return folder / f"{Path(path).name.split('.')[0]}-{digest.hexdigest()[:16]}.onnx"


def _version(package: str) -> str:
    """`package`'s installed version (read from its metadata: nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{package}=={version(package)}"
    except PackageNotFoundError:
        return f"{package} missing"


class _Session:
    """An ONNX Runtime session on cached bytes; called like OnnxRunner."""

    def __init__(self, model_bytes: bytes) -> None:
        from core.emotion.onnx_runtime import inference_session

        self.session = inference_session(model_bytes)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.name = meta.get("moodlens_name", "model")
        self.input_scale = meta.get("moodlens_input_scale", "0-255")
        self.parameters = int(meta.get("moodlens_parameters", "0"))
        _, height, width, channels = self.session.get_inputs()[0].shape
        if channels != 1 or height != width or not isinstance(height, int):
            raise ModelLoadError(f"cached graph takes {height}x{width}x{channels} faces")
        self.input_size = height

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        (probabilities,) = self.session.run(
            None, {"faces": np.ascontiguousarray(batch, np.float32)}
        )
        return probabilities


def _from_cache(path: Path, cached: Path) -> EmotionModel:
    session = _Session(cached.read_bytes())
    model = EmotionModel(
        None,
        name=session.name,
        input_size=session.input_size,
        input_scale=session.input_scale,
        path=path,
        runtime="onnxruntime",
    )
    model._fn = session
    model._parameters = session.parameters
    probe = model.predict(np.zeros((1, session.input_size, session.input_size), np.uint8))
    if probe.shape != (1, NUM_EMOTIONS) or not np.isfinite(probe).all():
        raise ModelLoadError(f"cached graph answers {probe.shape}")
    return model


def _write_cache(model: EmotionModel, cached: Path) -> None:
    """The verified ONNX graph of a Keras-loaded model, with what loading it needs."""
    import onnx

    from core.emotion.onnx_runtime import to_onnx

    graph = onnx.load_from_string(to_onnx(model.keras_model))
    for key, value in {
        "moodlens_name": model.name,
        "moodlens_input_scale": model.input_scale,
        "moodlens_parameters": str(model.parameters),
    }.items():
        graph.metadata_props.add(key=key, value=value)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(graph.SerializeToString())
    partial.replace(cached)  # atomic: a replica reading meanwhile sees the whole file or none


def load_for_serving(path: str | Path, folder: Path | None = None) -> EmotionModel:
    """The shipped model at `path` for the pages: from the ONNX cache when it is there (no
    TensorFlow), else loaded with Keras as `EmotionModel.load` does and cached for next time.
    MOODLENS_RUNTIME=keras, and files other than `.npz`, always take the Keras path."""
    from core.settings import Settings

    path = Path(path)
    if path.suffix != ".npz" or not path.exists() or Settings.from_env().runtime == "keras":
        return EmotionModel.load(path)
    folder = cache_dir() if folder is None else folder
    cached = cache_file(path, folder)
    if cached.exists():
        try:
            return _from_cache(path, cached)
        except Exception as error:  # a damaged cache costs one rebuild, never the model
            log.warning("%s: cached ONNX graph unusable (%s); rebuilding it", path.name, error)
            with contextlib.suppress(OSError):  # a read-only cache: served from Keras anyway
                cached.unlink(missing_ok=True)
    model = EmotionModel.load(path)
    model.predict(np.zeros((1, model.input_size, model.input_size), np.uint8))
    if model.runtime == "onnxruntime":  # ONNX reproduced Keras within 1e-3 on a probe batch
        try:
            _write_cache(model, cached)
        except OSError as error:  # a read-only checkout still serves, only slower to start
            log.warning("%s: could not cache its ONNX graph (%s)", path.name, error)
    return model


def main(argv: list[str] | None = None) -> None:
    """Build the cache for the given models (default: the one the app opens with; --all:
    every shipped model); print what it did. `make run` calls it."""
    from core.emotion.cards import available_models
    from core.settings import Settings

    args = sys.argv[1:] if argv is None else argv
    settings = Settings.from_env()
    shipped = available_models(settings.models_dir, first=settings.preferred_model)
    paths = shipped if args == ["--all"] else [Path(a) for a in args] or shipped[:1]
    folder = cache_dir()
    for path in paths:
        if cache_file(path, folder).exists():
            print(f"{path.name}: cached")
            continue
        try:
            model = load_for_serving(path, folder)
        except ModelLoadError as error:
            print(f"{path.name}: {error}")
            continue
        done = cache_file(path, folder).exists()
        print(f"{path.name}: {'cached now' if done else f'not cached ({model.runtime} only)'}")


if __name__ == "__main__":
    main()

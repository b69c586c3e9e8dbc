"""Emotion models: load a shipped model, classify faces, smooth over time, read model cards.

    model = EmotionModel.load(default_model_path())   # the best shipped model (validation)
    probabilities = model.predict(faces)              # (n, 7), FER2013 order (core.labels)
    cards = load_cards()                              # every models/*.json, best first

    model          EmotionModel, EmotionSmoother, ModelLoadError; the .npz storage format
    cards          ModelCard, CardSet, load_cards: the one reading of models/*.json, and which
                   shipped model comes first (available_models, default_model_path)
    architectures  ArchSpec and build_model: every trainable architecture (imports Keras)
    onnx_runtime   the faster ONNX Runtime path EmotionModel takes when it reproduces Keras
    onnx_cache     load_for_serving: that ONNX graph cached per model, so pages skip TensorFlow

Names import lazily: `import core.emotion` loads neither TensorFlow nor Keras until a name that
needs them is used.
"""

from core.lazy import lazy_exports

_WHERE = {
    "EmotionModel": "model",
    "EmotionSmoother": "model",
    "ModelLoadError": "model",
    "npz_weight_format": "model",
    "save_npz_model": "model",
    "CardError": "cards",
    "CardSet": "cards",
    "ModelCard": "cards",
    "available_models": "cards",
    "card_accuracy": "cards",
    "default_model_path": "cards",
    "load_cards": "cards",
    "ARCHITECTURES": "architectures",
    "ArchSpec": "architectures",
    "build_model": "architectures",
    "load_for_serving": "onnx_cache",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

"""spokenword: spoken-word recognition from spectrogram images.

``spokenword.load_model()`` opens the bundled pretrained model (torch-free);
``spokenword.load_model(PATH, ...)`` a checkpoint, an export, a training run or a model folder
(:func:`spokenword.inference.load.load_model`); ``spokenword.adapt(MODEL, FOLDER, OUT)`` adapts a model to
new takes (:func:`spokenword.training.adapt.adapt`; the training extra). This module imports nothing else
until asked.
"""

__version__ = "0.1.0"
__all__ = ["adapt", "load_model", "__version__"]


def __getattr__(name):
    if name == "load_model":
        from spokenword.inference.load import load_model

        return load_model
    if name == "adapt":
        from spokenword.training.adapt import adapt

        return adapt
    raise AttributeError(f"module 'spokenword' has no attribute {name!r}")

"""spokenword: spoken-word recognition from spectrogram images.

``spokenword.load_model()`` opens the bundled pretrained model (torch-free);
``spokenword.load_model(PATH, ...)`` a checkpoint, an export or a training run
(:func:`spokenword.inference.load.load_model`). This module imports nothing else until asked.
"""

__version__ = "0.1.0"
__all__ = ["load_model", "__version__"]


def __getattr__(name):
    if name == "load_model":
        from spokenword.inference.load import load_model

        return load_model
    raise AttributeError(f"module 'spokenword' has no attribute {name!r}")

"""spokenword: spoken-word recognition from spectrogram images."""

__version__ = "0.1.0"

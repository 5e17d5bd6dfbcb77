"""Data: corpora (``corpora``), splits, the feature cache, augmentation and the Lightning data module."""

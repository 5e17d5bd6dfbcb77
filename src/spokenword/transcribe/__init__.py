"""Digit strings: segmentation (``segment``) and decoding words into text (``decode``)."""

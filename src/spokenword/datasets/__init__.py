"""Corpora: where labelled recordings live and how they are named.

A corpus turns a folder into a list of :class:`Recording` records; splitting, features and
training live in :mod:`spokenword.data`.
"""

from spokenword.datasets.base import Corpus, DatasetError, Recording
from spokenword.datasets.fsdd import FSDD
from spokenword.datasets.folder import LabelledFolder
from spokenword.datasets.audiomnist import AudioMNIST
from spokenword.datasets.speech_commands import SpeechCommands

__all__ = ["AudioMNIST", "Corpus", "DatasetError", "FSDD", "LabelledFolder", "Recording", "SpeechCommands"]

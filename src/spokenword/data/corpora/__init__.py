"""Corpora: where labelled recordings live and how they are named.

A corpus turns a folder into a list of :class:`Recording` records; splitting, features and
training live in :mod:`spokenword.data`.
"""

from spokenword.data.corpora.base import Corpus, DatasetError, Recording
from spokenword.data.corpora.fsdd import FSDD
from spokenword.data.corpora.folder import LabelledFolder
from spokenword.data.corpora.audiomnist import AudioMNIST
from spokenword.data.corpora.speech_commands import SpeechCommands
from spokenword.data.corpora.negatives import Combined, NoiseClips, OtherWords, ReversedWords

__all__ = ["AudioMNIST", "Combined", "Corpus", "DatasetError", "FSDD", "LabelledFolder", "NoiseClips", "OtherWords", "Recording", "ReversedWords", "SpeechCommands"]

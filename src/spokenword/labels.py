"""The two outcomes that are not a word of the vocabulary, named as in Speech Commands.

A model trained with them (a corpus that includes :class:`~spokenword.data.corpora.OtherWords` and
:class:`~spokenword.data.corpora.NoiseClips`) can answer "none of these"; every command treats them
alike: ``classify`` prints them, ``transcribe`` and the live mode drop them, the web page shows
"not a digit". Torch-free and import-free, so every stage can name them.
"""

UNKNOWN = "_unknown_"  #: speech, but none of the model's words
SILENCE = "_silence_"  #: no speech: silence or noise
REJECTIONS = (SILENCE, UNKNOWN)
#: what each stands for, in reports and cards
NAMES = {UNKNOWN: "other words", SILENCE: "noise clips"}


def is_rejection(label: str) -> bool:
    """Whether ``label`` means "not one of the words" (:data:`UNKNOWN` or :data:`SILENCE`)."""
    return label in REJECTIONS

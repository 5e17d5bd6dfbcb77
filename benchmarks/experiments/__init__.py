"""One-off derivations kept so that the constants and choices they explain can be checked again.

* :mod:`benchmarks.experiments.embedding_input`: where ``SpeechEmbeddingCNN``'s ``input_mean`` /
  ``input_std`` come from (the pretrained front end's statistics on FSDD).
* :mod:`benchmarks.experiments.trimming`: what the noise-floor trimming rule (``trim_floor_db``) cuts
  beyond the peak rule, per speaker and word.

Both run on the harness (``python -m benchmarks.experiments.NAME``, :mod:`benchmarks.common`'s flags) and
write ``OUT/experiments/<name>.json``; ``benchmarks.report`` does not tabulate them.
"""

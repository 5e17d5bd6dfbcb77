"""spokenword's benchmark suite, run from the repository root as ``python -m benchmarks.NAME``.

* :mod:`benchmarks.accuracy`: ``official``, ``loso``, ``noise`` protocols of a config, ``ensemble`` of
  several configs' runs, ``summary``, ``import`` (a ``spokenword fit`` run), ``compare``;
* :mod:`benchmarks.speed`: ``inference`` (ms per clip: Classifier, ONNX, int8), ``model`` (training
  step), ``batch`` (augmented batch, wave cache), ``train`` (whole runs against a minimal loop);
* :mod:`benchmarks.serve`: ``load`` (HTTP) and ``live`` (WebSocket latency) of ``spokenword serve``;
* :mod:`benchmarks.transcribe`: connected digits; :mod:`benchmarks.scale`: cost against corpus size;
* :mod:`benchmarks.experiments`: one-off derivations behind a constant or a choice;
* :mod:`benchmarks.report`: builds ``docs/results.md`` (and the README's results block) from the results.

All share :mod:`benchmarks.common`: the flags (``--data.root``, ``--threads``, ``--out``, ``--name``), the
machine record and the one results writer (``benchmarks/results/<benchmark>/<name>.json``).
"""

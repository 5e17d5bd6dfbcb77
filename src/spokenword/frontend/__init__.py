"""The front end: a waveform to the model's input image.

``settings`` (the record that travels with every model, torch-free), ``host`` (the per-clip steps that
depend on the signal: trimming, loudest window, training's random window; numpy) and ``graph`` (the
tensor pipeline, :class:`~spokenword.frontend.graph.FrontEnd`: batched, exportable; torch).
"""

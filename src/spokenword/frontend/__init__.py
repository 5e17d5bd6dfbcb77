"""The front end: a waveform to the model's input image.

``settings`` (the record that travels with every model, torch-free), ``host`` (the per-clip steps that
depend on the signal: trimming, loudest window; numpy) and ``graph`` (the tensor pipeline: batched,
exportable; torch).
"""

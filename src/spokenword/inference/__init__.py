"""Inference: the torch-free contract (``base``), ONNX and checkpoint classifiers, ensembles, evaluation,
export, and the one loader (``load.load_model``)."""

"""Metric names, logged as ``{stage}/{name}`` (e.g. ``val/acc``): the task logs them, reports and plots
read them. Torch-free, so plotting a report needs no Lightning."""

LOSS, ACC = "loss", "acc"
#: what the best checkpoint is chosen by
MONITOR = f"val/{ACC}"

"""Training: the LightningModule (``task``), the LightningCLI (``cli``), callbacks, checkpoints and reports."""

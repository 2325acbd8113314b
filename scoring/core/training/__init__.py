"""Training the scorer: data sets, caches, the SORD loss, fitting, cross-validation, fine-tuning, ``train``."""

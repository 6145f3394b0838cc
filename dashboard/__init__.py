"""Keras prediction dashboard: versioned models from remote storage, predictions from a form or a CSV."""

__version__ = "0.1.0"

"""Leaf mechanisms every layer may use: files, URLs, JSON text, logs, memory, sign-in cookies. Nothing here imports
anything else of the dashboard but `errors`."""

"""The command line door: `python -m dashboard` / `keras-dashboard` (argparse)."""

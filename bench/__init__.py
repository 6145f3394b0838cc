"""Benchmarks: scripts that print figures beside a baseline measured in the same run (never timed assertions).
Run each from the repository root as a module: `python -m bench.api [--quick]`."""

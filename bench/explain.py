"""Explanation benchmark (issue 16): `python -m bench.explain [--quick]`. 100,000 rows x 10 features, every row
explained (sampled Shapley: 8 orderings, forwards and backwards), beside plain prediction of the same file in the
same run; time and the process's peak RSS. Builds its own model and data (bench/core.py's)."""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--demo",
        choices=["keras", "litert"],
        help="explain the demo store's model (4 inputs, exact) on this runtime instead",
    )
    parser.add_argument("--lean", action="store_true", help="with --demo litert: run where TensorFlow cannot load")
    args = parser.parse_args()
    if args.lean:
        import runpy

        from tests.support.helpers import NO_TENSORFLOW

        exec(NO_TENSORFLOW, {})
        sys.argv = [sys.argv[0], *[a for a in sys.argv[1:] if a != "--lean"]]
        runpy.run_module("bench.explain", run_name="__main__")
        return
    import numpy as np

    from dashboard import service
    from dashboard.service import understand

    if not args.demo:
        from bench import core
    rows = 10_000 if args.quick else 100_000
    folder = Path(tempfile.mkdtemp(prefix="explain-bench-"))
    if args.demo:
        from dashboard.config import load_settings

        settings = load_settings({"MODEL_CACHE_DIR": str(folder / "cache"), "MODEL_RUNTIME": args.demo}, secrets={})
        features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    else:
        settings = core.settings_for(folder, core.store_for(folder, [core.build_model(folder)]))
        features = core.FEATURES
    served = service.load_version(settings, service.catalog(settings).default)
    values = np.random.default_rng(0).uniform(0.1, 7, size=(rows, len(features)))
    data = (",".join(features) + "\n" + "\n".join(",".join(f"{v:.4f}" for v in row) for row in values)).encode()
    service.predict_csv(settings, served, data[:2000].rsplit(b"\n", 1)[0])  # warm the compiled call
    started = time.perf_counter()
    service.predict_csv(settings, served, data)
    plain = time.perf_counter() - started
    peak_plain = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    done = understand.explain_table(served, service.read_csv(settings, data))
    explained = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gap = done.attributions.prediction - done.attributions.reference
    error = float(np.max(np.abs(done.attributions.values.sum(axis=1) - gap)))
    ratio = explained / plain
    print(f"{rows:,} rows x {len(features)} features, runtime {served.runtime}")
    print(f"plain prediction (read, validate, predict): {plain:.2f} s, peak RSS {peak_plain:.0f} MB")
    print(
        f"every row explained ({'exact' if done.attributions.exact else 'sampled, 8 orderings'}): {explained:.2f} s, "
        f"peak RSS {peak:.0f} MB, {explained / rows * 1e6:.0f} us per row"
    )
    print(
        f"ratio {ratio:.1f}x plain (target <= 30x: {'met' if ratio <= 30 else 'NOT met'}); "
        f"largest |sum - (prediction - reference)| {error:.2g}"
    )


if __name__ == "__main__":
    main()

"""Drift verdicts benchmark (issue 22): `python -m bench.drift [--quick]`.

How often a file drawn from the training distribution is called drifted (false alarms), and how often a shifted
file is caught (detection), for the calibrated verdicts (thresholds from PSI's null distribution at the file's
row count) beside the fixed bands they replace (stable < 0.1 <= moderate < 0.25 <= major), in the same run.
Training data: 4 normal features, 2,000 rows; every file's features are judged, so the rates are per feature.
Also the demo store's own sample.csv (30 rows of its training data) against its reference.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import REPO

FEATURES = 4
TRAINING_ROWS = 2_000


def rates(reference, schema, draws: int, rows: int, shift: float, rng) -> tuple[dict, dict]:
    """Share of verdicts per kind over `draws` files of `rows` rows shifted by `shift` standard deviations."""
    from dashboard.prediction import drift as ref

    calibrated = {"stable": 0, "moderate": 0, "major": 0}
    fixed = dict(calibrated)
    for _ in range(draws):
        columns = {f.name: rng.normal(shift, 1.0, rows) for f in schema.features}
        for found in ref.drift(columns, np.ones(rows, dtype=bool), reference):
            calibrated[found.verdict] += 1
            fixed[ref.verdict(found.psi)] += 1
    total = draws * FEATURES
    return ({k: v / total for k, v in calibrated.items()}, {k: v / total for k, v in fixed.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 draws per cell instead of 100")
    args = parser.parse_args()
    from dashboard import service
    from dashboard.prediction import drift as ref
    from dashboard.prediction.schema import Feature, Output, Schema
    from dashboard.service import understand

    draws = 10 if args.quick else 100
    rng = np.random.default_rng(7)
    schema = Schema(tuple(Feature(f"x{i}") for i in range(FEATURES)), Output("regression"))
    training = {f.name: rng.normal(0.0, 1.0, TRAINING_ROWS) for f in schema.features}
    reference = ref.compute(training, schema)
    print(
        f"reference: {FEATURES} normal features, {TRAINING_ROWS:,} training rows, {ref.BINS} decile bins; {draws} files"
    )
    print("per feature verdicts: calibrated (this dashboard) | fixed bands 0.1 / 0.25 (before), same files")
    for shift, sizes in ((0.0, (30, 100, 1000)), (0.5, (30, 100, 200, 1000)), (1.0, (30, 100, 200, 1000))):
        what = "false alarms (training distribution)" if shift == 0 else f"detection of a {shift:g} sd shift"
        for rows in sizes:
            calibrated, fixed = rates(reference, schema, draws, rows, shift, rng)
            moderate_at, major_at = ref.thresholds(tuple(reference["features"]["x0"]["counts"]), rows)
            print(
                f"{what}, n={rows:>5,}: calibrated major {calibrated['major']:6.1%}, moderate or major "
                f"{calibrated['moderate'] + calibrated['major']:6.1%} | fixed major {fixed['major']:6.1%}, "
                f"moderate or major {fixed['moderate'] + fixed['major']:6.1%}  "
                f"(thresholds at this n: moderate {moderate_at:.3f}, major {major_at:.3f})"
            )
    settings = service.settings({"MODEL_CACHE_DIR": str(Path.home() / ".cache" / "keras-dashboard-bench")})
    catalog = service.catalog(settings)
    served = service.load_version(settings, catalog.default)
    table = service.read_csv(settings, (REPO / "dashboard" / "demo" / "sample.csv").read_bytes())
    result = service.predict_table(served, table)
    found = understand.drift(served, table, result)
    shown = ", ".join(f"{d.feature} {d.verdict} (PSI {d.psi:.2f}, fixed: {ref.verdict(d.psi)})" for d in found)
    print(f"demo sample.csv ({result.predicted} rows) against version {served.label}'s reference: {shown}")


if __name__ == "__main__":
    main()

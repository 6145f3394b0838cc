"""Memory while versions are cycled (issue 23): `python -m bench.versions [--quick]`.

A store of four versions (the demo's two models published twice each); the server's pool keeps 2 loaded with the
default pinned, and the three others are loaded in turn through the API's loading path (Serving._load), 1,000
loads (100 with --quick). Each policy runs in its own process: "once" (gc.freeze() after the first load only, as
the server does now) beside "each" (gc.freeze() after every load, as it did before). Prints RSS every tenth of
the run and the rise per 100 loads.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import REPO, rss_mb


def run(policy: str, loads: int) -> None:
    """One policy in this process: prints 'rss LOADS MB' lines."""
    from dashboard import service
    from dashboard.service.batching import MicroBatcher
    from dashboard.service.publish import publish
    from dashboard.service.serving import Serving

    folder = Path(tempfile.mkdtemp(prefix="versions-bench-"))
    demo = REPO / "dashboard" / "demo"
    for label, model in (
        ("1.0.0", "iris-1.0.0"),
        ("1.1.0", "iris-1.1.0"),
        ("1.2.0", "iris-1.0.0"),
        ("2.0.0", "iris-1.1.0"),
    ):
        publish(demo / f"{model}.keras", label, str(folder / "store"))
    settings = service.settings(
        {
            "MODEL_MANIFEST_URL": str(folder / "store" / "manifest.json"),
            "MODEL_CACHE_DIR": str(folder / "cache"),
            "MODEL_CACHE_VERSIONS": "2",
        }
    )
    server = Serving(settings=settings, batcher=MicroBatcher())
    catalog = server.catalog()
    server._load(catalog.default)
    others = [v for v in catalog.versions if v is not catalog.default]
    print(f"rss 0 {rss_mb():.1f}", flush=True)
    for i in range(1, loads + 1):
        server._load(others[i % len(others)])
        if policy == "each":  # the earlier behaviour: freeze after every load
            gc.collect()
            gc.freeze()
        if i % max(1, loads // 10) == 0:
            print(f"rss {i} {rss_mb():.1f}", flush=True)
    default_loaded = server.pool.peek(settings, catalog.default) is not None
    print(f"default still loaded: {default_loaded}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--policy", choices=["once", "each"], help=argparse.SUPPRESS)
    parser.add_argument("--loads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    loads = args.loads or (100 if args.quick else 1000)
    if args.policy:
        run(args.policy, loads)
        return
    print(f"{loads:,} loads cycling 3 versions (2 kept, the default pinned); RSS in MB")
    for policy in ("once", "each"):
        done = subprocess.run(
            [sys.executable, "-m", "bench.versions", "--policy", policy, "--loads", str(loads)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        points = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("rss ")]
        series = [(int(n), float(mb)) for n, mb in points]
        first = next(mb for n, mb in series if n >= loads // 10)
        last = series[-1][1]
        rise = (last - first) / max(1, series[-1][0] - loads // 10) * 100
        label = "gc.freeze once (now)" if policy == "once" else "gc.freeze after every load (before)"
        shown = "  ".join(f"{n}:{mb:.0f}" for n, mb in series)
        print(f"{label:<40} {shown}")
        print(f"{'':<40} rise after warm-up: {rise:+.2f} MB per 100 loads; {done.stdout.splitlines()[-1]}")


if __name__ == "__main__":
    main()

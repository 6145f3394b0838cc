"""spark-submit entry point for the Spark engine (spark-submit runs a file, not `python -m`):

    spark-submit --master yarn bin/spark-predict.py --input s3a://lake/customers/ --output s3a://lake/scores/2026-11-30

The arguments are those of `python -m dashboard predict --engine spark` (--input, --output, --version, --format).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["predict", "--engine", "spark", *sys.argv[1:]]))

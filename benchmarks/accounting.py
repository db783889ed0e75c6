"""Driver memory of the accounting stage: flat from 100,000 to 1,000,000 staged rows.

Each size runs in a fresh Python process (its own Spark), so each peak RSS is that size's own:
synthetic staged rows and listing (131 labels, Training/Test, a few files the "scan" skipped)
are generated inside Spark, then ``accounting.account`` runs and the driver Python's peak RSS
(``VmHWM``) is read before and after. For contrast, the previous design, which collected one
``(path, label, featurized)`` tuple per row to the driver, is measured the same way.

    .venv/bin/python benchmarks/accounting.py              # 100,000 and 1,000,000 rows
    .venv/bin/python benchmarks/accounting.py --sizes 2000 # a quick check (benchmarks/smoke.py)

Prints one JSON line per size and approach, then a summary; writes
``benchmarks/results/accounting.json`` unless ``--no-save``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = 3  # listed files the scan "did not return": zero-byte uploads

CHILD = r"""
import json, sys, time
from pyspark.sql import SparkSession, functions as F
from fruits_pipeline.accounting import add_skipped, count_outcomes
from fruits_pipeline.schema import SPLIT_NAMES

def peak_mb():
    status = open("/proc/self/status").read().splitlines()
    return round(next(int(r.split()[1]) for r in status if r.startswith("VmHWM")) / 1024, 1)

rows, approach, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.driver.memory", "4g").config("spark.log.level", "ERROR").getOrCreate())
ids = spark.range(rows + SKIPPED_FILES)
split = F.when(F.col("id") % 4 == 0, "Test").otherwise("Training")
path = F.format_string("file:/bench/%s/label %d/%d.jpg", split, F.col("id") % 131, F.col("id"))
keys = [path.alias("path"), F.format_string("label %d", F.col("id") % 131).alias("label"),
        split.alias("split")]
failed = F.col("id") % 97 == 0
staged = ids.where(F.col("id") < rows).select(*keys, F.struct(
    F.when(~failed, F.lit(b"\x00" * 16)).alias("packed_features"),
    F.when(failed, F.lit("corrupt")).alias("error_kind"),
    F.when(failed, F.lit("synthetic")).alias("error_message")).alias("result"))
staged.write.mode("overwrite").parquet(work + "/staging")
ids.select(path.alias("path")).write.mode("overwrite").parquet(work + "/listed")
ids.where((F.col("id") < rows) & ~failed).select(*keys, F.array(F.lit(0.5)).alias("features")
    ).write.mode("overwrite").parquet(work + "/features")
ids.where((F.col("id") < rows) & failed).select(*keys, F.lit("corrupt").alias("error_kind"),
    F.lit("synthetic").alias("error_message")).write.mode("overwrite").parquet(work + "/errors")
listed = spark.read.parquet(work + "/listed")
before = peak_mb()
start = time.perf_counter()
if approach == "spark":  # the accounting stage: skipped files, then per-label counts
    staging = spark.read.parquet(work + "/staging")
    add_skipped(listed, staging.select("path"), work + "/staging", lambda p: 0, SPLIT_NAMES)
    features, errors = spark.read.parquet(work + "/features"), spark.read.parquet(work + "/errors")
    seen = count_outcomes(features, errors, rows, model_runs=rows).files_seen + SKIPPED_FILES
else:  # the previous design: one Python tuple per staged row on the driver
    collected = [(r.path, r.label, r.result.error_kind is None)
                 for r in spark.read.parquet(work + "/staging").collect()]
    seen = len(collected)
seconds = time.perf_counter() - start
print(json.dumps({"rows": rows, "approach": approach, "files_seen": seen,
                  "seconds": round(seconds, 2), "driver_python_peak_mb_before": before,
                  "driver_python_peak_mb": peak_mb()}))
""".replace("SKIPPED_FILES", str(SKIPPED))


def measure(rows: int, approach: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="fruits-accounting-") as work:
        completed = subprocess.run(
            [sys.executable, "-c", CHILD, str(rows), approach, work],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-3000:])
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--approaches", nargs="+", default=["spark", "collect"], choices=["spark", "collect"]
    )
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    results = [measure(n, approach) for approach in args.approaches for n in args.sizes]
    for approach in args.approaches:
        mine = [r for r in results if r["approach"] == approach]
        first, last = mine[0], mine[-1]
        growth = last["driver_python_peak_mb"] / first["driver_python_peak_mb"] - 1
        print(
            f"{approach:8s} driver Python peak RSS: "
            + ", ".join(
                f"{r['rows']:,} rows {r['driver_python_peak_mb']:.0f} MB ({r['seconds']} s)"
                for r in mine
            )
            + f"; {growth:+.1%} from the smallest to the largest"
        )
    if not args.no_save:
        target = ROOT / "benchmarks" / "results" / "accounting.json"
        target.write_text(json.dumps({"started": started, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The probe's share of a whole job at scale, before and after its training sample was capped.

A whole run on 65,000 photos takes long here, so this measures what scales with the dataset
apart: the probe stage alone, on a ``pca/`` frame of ``--rows`` rows, and the job's other
stages from a finished smaller run, scaled linearly with the number of images.

- The frame: RUN's ``pca/`` (for example the shared sample linked under 120 class names,
  ``benchmarks/linked_classes.py``) copied until it has ``--rows`` rows, each copy's path
  suffixed and its coordinates moved by seeded noise (5 % of each component's spread), so no
  two rows are the same; labels and splits are kept. Written as Parquet, read back as the job
  reads ``pca/``.
- before: the probe as it was, one logistic regression trained on every training row;
  after: the probe as it is (``probe.run_probe``'s defaults: three classifiers, at most
  ``TRAIN_ROWS_PER_CLASS`` rows per class). Both on the same frame, in the same process.
- the other stages: RUN's ``job_seconds_after_startup`` less its probe stage (or
  ``--other-seconds``, read from the stage lines of a run stopped during its probe), times
  ``rows / RUN's images``.

    python -m benchmarks.probe_share RUN [--rows 65000] [--other-seconds S --run-images N]
        [--out benchmarks/results/probe_share.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from benchmarks.throughput import load_average, machine
from fruits_pipeline.manifest import Manifest
from fruits_pipeline.probe import LOGISTIC_REGRESSION, run_probe
from fruits_pipeline.stages import Stage

PROBE_STAGE = Stage.PROBE.key
NOISE = 0.05


def scaled_frame(pca: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """``pca`` repeated to ``rows`` rows: paths suffixed with the copy, coordinates jittered."""
    copies = -(-rows // len(pca))
    matrix = np.stack(pca["pca_features"].to_numpy())
    spread = matrix.std(axis=0, keepdims=True)
    rng = np.random.default_rng(seed)
    frames = []
    for copy in range(copies):
        jitter = rng.standard_normal(matrix.shape) * spread * NOISE if copy else 0.0
        frames.append(
            pd.DataFrame(
                {
                    "path": pca["path"] + f"#copy{copy}",
                    "label": pca["label"],
                    "split": pca["split"],
                    "pca_features": list((matrix + jitter).astype(np.float32)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).head(rows)


def write_parts(frame: pd.DataFrame, folder: Path, parts: int = 8) -> None:
    """``frame`` as ``parts`` Parquet files in ``folder``: ``pca_features`` as list<float>."""
    folder.mkdir(parents=True)
    for index, part in enumerate(np.array_split(np.arange(len(frame)), parts)):
        chunk = frame.iloc[part].assign(
            pca_features=[vector.tolist() for vector in frame["pca_features"].iloc[part]]
        )
        chunk.to_parquet(folder / f"part-{index:05d}.parquet", index=False)


def timed_probe(spark: SparkSession, uri: str, **options: object) -> dict[str, object]:
    start = time.perf_counter()
    probe = run_probe(spark.read.parquet(uri), seed=42, **options)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 1), "probe": asdict(probe) | {"confusion_matrix": None}}


def other_stages(run: Path) -> tuple[float, int]:
    """Seconds of RUN's stages after start-up but its probe, and its featurized images."""
    manifest = Manifest.loads((run / "manifest.json").read_text())
    assert manifest.throughput and manifest.counts, "RUN must be a succeeded run"
    seconds = manifest.throughput.job_seconds_after_startup - manifest.timings_s[PROBE_STAGE]
    return seconds, manifest.counts.featurized


def share(probe: dict[str, Any] | None, others_scaled: float) -> float | None:
    """The probe's share of the whole job after start-up (None when not measured)."""
    if probe is None:
        return None
    seconds = float(probe["seconds"])
    return round(seconds / (others_scaled + seconds), 3)


def measure(
    run: Path, rows: int, spark: SparkSession, others: tuple[float, int], with_before: bool
) -> dict[str, object]:
    """The figures: the probe after (and ``with_before``, before) on ``rows`` rows, the other
    stages scaled."""
    others_scaled = others[0] * rows / others[1]
    load_start = load_average()
    with tempfile.TemporaryDirectory(prefix="probe-share-") as work:
        uri = os.path.join(work, "pca")
        write_parts(scaled_frame(pd.read_parquet(run / "pca"), rows), Path(uri))
        after = timed_probe(spark, uri)
        before = (
            timed_probe(spark, uri, rows_per_class=None, classifiers=(LOGISTIC_REGRESSION,))
            if with_before
            else None
        )
    return {
        "rows": rows,
        "from_run": str(run),
        "run_images": others[1],
        "other_stages_s_scaled": round(others_scaled, 1),
        "before": before,
        "after": after,
        "share_before": share(before, others_scaled),
        "share_after": share(after, others_scaled),
        "machine": machine(),
        "load_average": {"start": load_start, "end": load_average(), "waited_s": 0.0},
    }


def table(figures: dict) -> str:
    lines = [
        f"rows {figures['rows']:,} (from {figures['run_images']:,} images of "
        f"{figures['from_run']}); other stages scaled: {figures['other_stages_s_scaled']} s",
        "| probe | trained on | seconds | share of job | accuracy |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("before", "after"):
        if figures[name] is None:
            lines.append(f"| {name} | not measured (--skip-before) | | | |")
            continue
        probe = figures[name]["probe"]
        lines.append(
            f"| {name} | {probe['train_rows']:,} rows | {figures[name]['seconds']} | "
            f"{figures[f'share_{name}']:.1%} | {probe['accuracy']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run (local folder) with pca/")
    parser.add_argument("--rows", type=int, default=65_000)
    parser.add_argument("--other-seconds", type=float, help="RUN's stages but the probe")
    parser.add_argument("--run-images", type=int, help="RUN's images (with --other-seconds)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument(
        "--skip-before",
        action="store_true",
        help="time the probe as it is only (the old probe takes many minutes at 65,000 rows)",
    )
    args = parser.parse_args(argv)
    given = args.other_seconds is not None and args.run_images is not None
    others = (args.other_seconds, args.run_images) if given else other_stages(args.run)
    spark = (
        SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false").getOrCreate()
    )
    figures = measure(args.run, args.rows, spark, others, not args.skip_before)
    spark.stop()
    print(table(figures))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

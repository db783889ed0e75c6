"""incremental.py: which files are reused, featurized again, or removed (tiny frames)."""

from __future__ import annotations

from datetime import datetime

import pytest
from pyspark.sql import functions as F

from fruits_pipeline.accounting import Listing
from fruits_pipeline.incremental import plan_increment
from fruits_pipeline.runs import PreviousRun
from fruits_pipeline.schema import ERRORS_SCHEMA, FEATURES_SCHEMA, INVENTORY_SCHEMA

pytestmark = pytest.mark.spark

T0, T1 = datetime(2026, 11, 1, 8, 0), datetime(2026, 11, 2, 8, 0)


def paths(frame) -> list[str]:
    return sorted(row.path for row in frame.select("path").collect())


def test_plan_reuses_only_files_with_the_same_path_length_and_time(spark) -> None:
    previous_inventory = spark.createDataFrame(
        [
            ("f:/a/same.jpg", 10, T0),
            ("f:/a/longer.jpg", 10, T0),
            ("f:/a/touched.jpg", 10, T0),
            ("f:/b/bad.jpg", 5, T0),
            ("f:/b/gone.jpg", 10, T0),
        ],
        INVENTORY_SCHEMA,
    )
    features = spark.createDataFrame(
        [
            (p, p.split("/")[1], None, [1.0])
            for p in ("f:/a/same.jpg", "f:/a/longer.jpg", "f:/a/touched.jpg", "f:/b/gone.jpg")
        ],
        FEATURES_SCHEMA,
    )
    errors = spark.createDataFrame([("f:/b/bad.jpg", "b", None, "corrupt", "why")], ERRORS_SCHEMA)
    previous = PreviousRun("f:/run1", None, previous_inventory, features, errors)  # type: ignore[arg-type]
    scanned = spark.createDataFrame(
        [
            ("f:/a/same.jpg", 10, T0),
            ("f:/a/longer.jpg", 11, T0),
            ("f:/a/touched.jpg", 10, T1),
            ("f:/b/bad.jpg", 5, T0),
            ("f:/c/new.jpg", 7, T1),
        ],
        INVENTORY_SCHEMA,
    )
    images = scanned.select(
        "path", F.lit("x").alias("label"), F.lit(None).alias("split"), F.lit(b"").alias("content")
    )
    listing = Listing(
        images=images, files=scanned.select("path"), scanned=scanned, count=5, read_partitions=1
    )
    read = []

    def read_files(named):
        read.append(paths(named))
        return images.join(named, "path", "left_semi")

    plan = plan_increment(listing, previous, read_files)
    assert read == [["f:/a/longer.jpg", "f:/a/touched.jpg", "f:/c/new.jpg"]]
    assert paths(plan.unchanged) == ["f:/a/same.jpg", "f:/b/bad.jpg"]
    assert paths(plan.to_featurize) == ["f:/a/longer.jpg", "f:/a/touched.jpg", "f:/c/new.jpg"]
    assert paths(plan.reused_features) == ["f:/a/same.jpg"]
    assert paths(plan.reused_errors) == ["f:/b/bad.jpg"]
    assert [(r.path, r.label) for r in plan.removed.collect()] == [("f:/b/gone.jpg", "b")]

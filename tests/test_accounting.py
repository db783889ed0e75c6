"""accounting.py: the listing as a DataFrame, what the scan skipped, per-label counts, the
invariant ``files_seen == featurized + errors == listed``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from fruits_pipeline.accounting import (
    EMPTY_FILE,
    IGNORED_NAME,
    UNREADABLE,
    add_skipped,
    count_outcomes,
    list_input,
    scan_path,
    skipped_error,
)
from fruits_pipeline.errors import NoInputError
from fruits_pipeline.manifest import LabelCounts
from fruits_pipeline.reading import with_label
from fruits_pipeline.schema import ERRORS_SCHEMA, FEATURES_SCHEMA, SPLIT_NAMES, STAGED_SCHEMA
from tests.conftest import SAMPLE

pytestmark = pytest.mark.spark

PHOTO = next(SAMPLE.rglob("*.jpg"))


def test_listing_paths_are_written_like_the_scan_paths(spark, tmp_path: Path) -> None:
    folder = tmp_path / "Test" / "Pêche 100%20 jaune+vert"
    folder.mkdir(parents=True)
    shutil.copy(PHOTO, folder / "a b.jpg")
    shutil.copy(PHOTO, folder / "c+d.JPEG")
    listing = list_input(spark, str(tmp_path), SPLIT_NAMES)
    assert listing.count == 2 and listing.read_partitions >= 1
    listed = sorted(row.path for row in listing.files.collect())
    assert listed == sorted(row.path for row in listing.images.select("path").collect())
    assert listed[0].endswith("/Test/Pêche 100%20 jaune+vert/a b.jpg")


def test_names_spark_hides_are_listed_and_become_errors(spark, tmp_path: Path) -> None:
    for relative in (
        "Training/kiwi/ok.jpg",
        "Training/kiwi/_under.jpg",
        "Training/kiwi/.dot.JPG",
        "Training/_tmp/x.jpg",
        "_incoming/deep/y.jpeg",
        "Training/kiwi/_notes.txt",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PHOTO, tmp_path / relative)
    listing = list_input(spark, f"file:{tmp_path}", SPLIT_NAMES)
    base = f"file:{tmp_path}"
    hidden = {
        f"{base}/Training/kiwi/_under.jpg",
        f"{base}/Training/kiwi/.dot.JPG",
        f"{base}/Training/_tmp/x.jpg",
        f"{base}/_incoming/deep/y.jpeg",
    }
    assert listing.hidden == hidden
    assert listing.count == 5
    assert {r.path for r in listing.files.collect()} == hidden | {f"{base}/Training/kiwi/ok.jpg"}
    assert {r.path for r in listing.images.select("path").collect()} == {
        f"{base}/Training/kiwi/ok.jpg"
    }  # Spark itself cannot read them
    staging = str(tmp_path / "staging")
    staged_frame(spark, [(f"{base}/Training/kiwi/ok.jpg", None)]).write.parquet(staging)
    accounted = spark.read.parquet(staging).select("path")
    assert (
        add_skipped(listing.files, accounted, staging, lambda _: 4773, SPLIT_NAMES, listing.hidden)
        == 4
    )
    kinds = {r.result.error_kind for r in spark.read.parquet(staging).collect()}
    assert kinds == {None, IGNORED_NAME}


def test_scan_path_decodes_uris_but_keeps_a_plus(spark) -> None:
    uris = ["s3://b/Training/Apple%20Red%201/0.jpg", "file:///d/Kiwi+Lime/1%2520.jpg"]
    rows = spark.createDataFrame([(u,) for u in uris], "uri string")
    decoded = [r.p for r in rows.select(scan_path(F.col("uri")).alias("p")).collect()]
    assert decoded == ["s3://b/Training/Apple Red 1/0.jpg", "file:/d/Kiwi+Lime/1%20.jpg"]


def test_no_matching_file_or_no_folder_is_no_input(spark, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(NoInputError, match="no file matching"):
        list_input(spark, str(tmp_path), SPLIT_NAMES)
    with pytest.raises(NoInputError, match="cannot read input"):
        list_input(spark, str(tmp_path / "missing"), SPLIT_NAMES)


def staged_frame(spark, rows: list[tuple[str, str | None]]):
    """Staging rows ``(path, error_kind)``: featurized when the kind is None."""
    data = [(p, None, None, (b"\0" * 4 if k is None else None, k, k and "why")) for p, k in rows]
    return spark.createDataFrame(data, STAGED_SCHEMA).transform(with_label)


def outcomes(spark, features: list[str], errors: list[str]):
    keyed = [(p, p.split("/")[-2], None) for p in features]
    return (
        spark.createDataFrame([(*k, [0.5]) for k in keyed], FEATURES_SCHEMA),
        spark.createDataFrame(
            [(p, p.split("/")[-2], None, "corrupt", "why") for p in errors], ERRORS_SCHEMA
        ),
    )


def test_counts_per_label_from_what_was_written(spark) -> None:
    features, errors = outcomes(spark, ["f:/A/1.jpg", "f:/B/3.jpg"], ["f:/B/2.jpg"])
    counts = count_outcomes(features, errors, listed_count=3, model_runs=3)
    assert counts.per_label == {"A": LabelCounts(1, 1, 0), "B": LabelCounts(2, 1, 1)}
    assert (counts.files_seen, counts.featurized, counts.errors) == (3, 2, 1)
    assert counts.reused is None and counts.model_runs == 3


def test_incremental_counts_split_reused_new_and_removed(spark) -> None:
    features, errors = outcomes(spark, ["f:/A/1.jpg", "f:/A/2.jpg"], ["f:/B/3.jpg"])
    reused = spark.createDataFrame([("f:/A/1.jpg",), ("f:/B/3.jpg",)], "path string")
    removed = spark.createDataFrame([("f:/C/9.jpg", "C")], "path string, label string")
    counts = count_outcomes(features, errors, 3, reused=reused, removed=removed, model_runs=1)
    assert counts.per_label == {
        "A": LabelCounts(2, 2, 0, reused=1, featurized_new=1, removed=0),
        "B": LabelCounts(1, 0, 1, reused=1, featurized_new=0, removed=0),
        "C": LabelCounts(0, 0, 0, reused=0, featurized_new=0, removed=1),
    }
    assert (counts.reused, counts.featurized_new, counts.removed) == (2, 1, 1)


def test_skipped_files_become_errors_by_their_length(spark, tmp_path: Path) -> None:
    staging = str(tmp_path / "staging")
    staged_frame(spark, [("file:/in/Training/kiwi/1.jpg", None)]).write.parquet(staging)
    listed = spark.createDataFrame(
        [
            ("file:/in/Training/kiwi/1.jpg",),
            ("file:/in/Training/kiwi/empty.jpg",),
            ("file:/in/Test/fig/gone.jpg",),
            ("file:/in/Test/fig/reused.jpg",),
        ],
        "path string",
    )
    accounted = (
        spark.read.parquet(staging)
        .select("path")
        .unionByName(spark.createDataFrame([("file:/in/Test/fig/reused.jpg",)], "path string"))
    )
    lengths = {"file:/in/Training/kiwi/empty.jpg": 0, "file:/in/Test/fig/gone.jpg": 812}
    assert add_skipped(listed, accounted, staging, lengths.__getitem__, SPLIT_NAMES) == 2
    errors = {
        r.path: (r.label, r.split, r.result.error_kind)
        for r in spark.read.parquet(staging).collect()
        if r.result.error_kind
    }
    assert errors == {
        "file:/in/Training/kiwi/empty.jpg": ("kiwi", "Training", EMPTY_FILE),
        "file:/in/Test/fig/gone.jpg": ("fig", "Test", UNREADABLE),
    }
    assert skipped_error(0)[0] == EMPTY_FILE and skipped_error(1)[0] == UNREADABLE


def test_counts_that_do_not_match_the_listing_stop_the_run(spark) -> None:
    # A retried task that left its rows twice: more rows than files listed.
    features, errors = outcomes(spark, ["f:/A/1.jpg", "f:/A/1.jpg"], [])
    with pytest.raises(RuntimeError, match="accounted for 2 files but 1 were listed"):
        count_outcomes(features, errors, listed_count=1)

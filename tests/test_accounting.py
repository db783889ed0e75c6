"""accounting.py: the listing as a DataFrame, what the scan skipped, per-label counts, the
invariant ``files_seen == featurized + errors == listed``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from fruits_pipeline.accounting import (
    EMPTY_FILE,
    UNREADABLE,
    account,
    count_by_label,
    list_input,
    scan_path,
    skipped_error,
)
from fruits_pipeline.errors import NoInputError
from fruits_pipeline.manifest import LabelCounts
from fruits_pipeline.reading import with_label
from fruits_pipeline.schema import SPLIT_NAMES, STAGED_SCHEMA
from tests.conftest import SAMPLE

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


def test_count_by_label_in_one_job(spark) -> None:
    staged = staged_frame(spark, [("file:/A/1.jpg", None), ("file:/B/2.jpg", "corrupt"),
                                  ("file:/B/3.jpg", None)])  # fmt: skip
    assert count_by_label(staged) == {"A": LabelCounts(1, 1, 0), "B": LabelCounts(2, 1, 1)}


def test_skipped_files_become_errors_by_their_length_and_counts_add_up(
    spark, tmp_path: Path
) -> None:
    staging = str(tmp_path / "staging")
    staged_frame(spark, [("file:/in/Training/kiwi/1.jpg", None)]).write.parquet(staging)
    listed = spark.createDataFrame(
        [("file:/in/Training/kiwi/1.jpg",), ("file:/in/Training/kiwi/empty.jpg",),
         ("file:/in/Test/fig/gone.jpg",)], "path string",
    )  # fmt: skip
    lengths = {"file:/in/Training/kiwi/empty.jpg": 0, "file:/in/Test/fig/gone.jpg": 812}
    result = account(listed, 3, staging, lengths.__getitem__, SPLIT_NAMES)
    assert result.skipped == 2
    assert result.counts.per_label == {"fig": LabelCounts(1, 0, 1), "kiwi": LabelCounts(2, 1, 1)}
    errors = {r.path: (r.split, r.result.error_kind) for r in spark.read.parquet(staging).collect()
              if r.result.error_kind}  # fmt: skip
    assert errors == {"file:/in/Training/kiwi/empty.jpg": ("Training", EMPTY_FILE),
                      "file:/in/Test/fig/gone.jpg": ("Test", UNREADABLE)}  # fmt: skip
    assert skipped_error(0)[0] == EMPTY_FILE and skipped_error(1)[0] == UNREADABLE


def test_counts_that_do_not_match_the_listing_stop_the_run(spark, tmp_path: Path) -> None:
    staging = str(tmp_path / "staging")
    # A retried task that left its rows twice: more rows than files listed.
    staged_frame(spark, [("file:/in/a/1.jpg", None), ("file:/in/a/1.jpg", None)]).write.parquet(
        staging
    )
    listed = spark.createDataFrame([("file:/in/a/1.jpg",)], "path string")
    with pytest.raises(RuntimeError, match="accounted for 2 files but 1 were listed"):
        account(listed, 1, staging, lambda _: 1, SPLIT_NAMES)

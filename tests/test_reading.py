"""Labels and splits come from the folders, exactly; an incremental run reads exactly the files
it names, whatever their names."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import pytest
from pyspark.sql import functions as F

from fruits_pipeline.reading import (
    read_image_files,
    read_images,
    to_images,
    with_label,
    with_split,
)
from tests.aws import point_spark_at
from tests.conftest import SAMPLE

pytestmark = pytest.mark.spark

FOLDERS = ["Apple Red 1", "Pineapple Mini", "Pêche de vigne", "Äpfel", "Cherry"]


def test_labels_and_split_from_paths_on_a_tiny_frame(spark) -> None:
    paths = [
        "s3://bucket/fruits/Training/Apple Red 1/0_100.jpg",
        "file:/data/Test/Pêche de vigne/r_12_100.JPG",
        "file:/data/unsplit/Äpfel/a.jpeg",
    ]
    frame = spark.createDataFrame([(p,) for p in paths], "path string")
    rows = frame.transform(with_label).transform(with_split(["Training", "Test"])).collect()
    assert [(r.label, r.split) for r in rows] == [
        ("Apple Red 1", "Training"),
        ("Pêche de vigne", "Test"),
        ("Äpfel", None),
    ]


def test_reader_takes_every_jpeg_spelling_and_labels_exactly(spark, tmp_path: Path) -> None:
    source = next(SAMPLE.rglob("*.jpg"))
    expected = {}
    for index, folder in enumerate(FOLDERS):
        target = tmp_path / "Training" / folder
        target.mkdir(parents=True)
        for name in (f"{index}_a.jpg", f"{index}_b.JPG", f"{index}_c.jpeg", f"{index}_d.JpEg"):
            shutil.copy(source, target / name)
            expected[f"{folder}/{name}"] = folder
        (target / "notes.txt").write_text("not an image")
        shutil.copy(source, target / f"{index}_e.png")  # not matched by the glob: not counted
    frame = read_images(spark, str(tmp_path)).transform(with_label)
    rows = frame.select("path", "label").collect()
    found = {"/".join(r.path.split("/")[-2:]): r.label for r in rows}
    assert found == expected


# Each is a Hadoop glob character, a URI-encoding trap or a non-ASCII letter in a name.
AWKWARD = ["a*b.jpg", "q?.jpg", "c[1].jpg", "d{2,3}.jpg", "e f+g%20ä.jpg", "back\\slash.jpg"]


def test_read_image_files_reads_exactly_the_named_files(spark, tmp_path: Path) -> None:
    source = next(SAMPLE.rglob("*.jpg"))
    for folder in ("Training/We[ir]d {x}", "Training/k=v", "Training/Plain"):
        (tmp_path / folder).mkdir(parents=True)
        for name in [*AWKWARD, "plain.jpg", "c1.jpg", "d2.jpg", "ab.jpg"]:
            shutil.copy(source, tmp_path / folder / name)
    everything = read_images(spark, str(tmp_path))
    named = everything.where(
        F.col("path").contains("We[ir]d") | F.col("path").contains("k=v/c[1]")
    ).select("path")
    loaded = read_image_files(named)
    assert sorted(loaded.columns) == sorted(everything.columns)  # no k partition column
    expected = everything.join(named, "path", "left_semi").collect()
    assert len(expected) == len(AWKWARD) + 4 + 1
    assert sorted(loaded.collect()) == sorted(expected)  # paths, times, lengths and bytes
    # The scan's own file list: no file outside the named ones is opened.
    assert len(loaded.inputFiles()) == len(expected)
    images = loaded.transform(to_images(["Training"])).collect()
    assert {(r.label, r.split) for r in images} == {
        ("We[ir]d {x}", "Training"),
        ("k=v", "Training"),
    }


def test_read_image_files_of_no_file_is_empty(spark, tmp_path: Path) -> None:
    shutil.copy(next(SAMPLE.rglob("*.jpg")), tmp_path / "a.jpg")
    nothing = read_images(spark, str(tmp_path)).select("path").where(F.lit(False))
    loaded = read_image_files(nothing)
    assert loaded.count() == 0
    assert loaded.schema == read_images(spark, str(tmp_path)).schema


def test_read_image_files_reads_exactly_the_named_objects_on_s3(spark, aws) -> None:
    point_spark_at(spark, aws)
    jpeg = next(SAMPLE.rglob("*.jpg")).read_bytes()
    s3 = boto3.client("s3")
    folder = "in/Training/We[ir]d {x}"
    for name in [*AWKWARD, "c1.jpg", "ab.jpg"]:  # the last two match c[1] and a*b as globs
        s3.put_object(Bucket="fruits-data-eu", Key=f"{folder}/{name}", Body=jpeg)
    wanted = [f"s3://fruits-data-eu/{folder}/{name}" for name in AWKWARD]
    named = spark.createDataFrame([(path,) for path in wanted], "path string")
    loaded = read_image_files(named).collect()
    assert sorted(row.path for row in loaded) == sorted(wanted)
    assert all(row.content == jpeg and row.length == len(jpeg) for row in loaded)

"""Issue 2, must-show 2: labels and splits come from the folders, exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

from fruits_pipeline.reading import read_images, with_label, with_split
from tests.conftest import SAMPLE

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

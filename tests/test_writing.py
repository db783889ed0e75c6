"""writing.py and the file operations of jvm.py: one named file written and read back, a run's
parts found and cleared, and nothing else in the folder touched."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from fruits_pipeline.jvm import delete, exists, file_length, write_text
from fruits_pipeline.layout import RunLayout
from fruits_pipeline.writing import clear_outputs, existing_outputs, read_text

pytestmark = pytest.mark.spark


def test_a_text_file_round_trips_whole(spark: SparkSession, tmp_path: Path) -> None:
    uri = f"file:{tmp_path}/dir with space/manifest.json"
    text = '{\n  "label": "Pêche Plate",\n  "n": 1\n}\n\nlast line'
    write_text(spark, uri, text)
    assert exists(spark, uri) and read_text(spark, uri) == text
    assert file_length(spark, uri) == len(text.encode("utf-8"))
    write_text(spark, uri, "replaced")
    assert read_text(spark, uri) == "replaced"
    delete(spark, uri)
    assert not exists(spark, uri)
    delete(spark, uri)  # deleting what is not there is not an error


def test_existing_outputs_and_clear_touch_only_a_runs_parts(
    spark: SparkSession, tmp_path: Path
) -> None:
    layout = RunLayout(f"file:{tmp_path}")
    for part in ("features", "staging"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "part-0.parquet").write_text("x")
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    assert existing_outputs(spark, layout) == ["manifest.json", "features", "staging"]
    clear_outputs(spark, layout)
    assert existing_outputs(spark, layout) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]

"""Writing results: Parquet outputs and ``manifest.json``, through Spark's Hadoop filesystem.

Going through Spark (not Python's ``open``) is what makes the same code write to a local folder
here and to S3 (S3A) on the cluster and off it. The file operations PySpark has no public API
for (exists, delete, one named file) are in ``jvm.py``.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from fruits_pipeline.jvm import delete, exists, write_text
from fruits_pipeline.layout import OUTPUT_PARTS, RunLayout
from fruits_pipeline.manifest import Manifest


def existing_outputs(spark: SparkSession, layout: RunLayout) -> list[str]:
    """The names in ``layout.OUTPUT_PARTS`` already present in the run's folder."""
    return [name for name in OUTPUT_PARTS if exists(spark, layout.part(name))]


def clear_outputs(spark: SparkSession, layout: RunLayout) -> None:
    """Remove a previous run's outputs, the manifest first so no stale success survives."""
    for name in OUTPUT_PARTS:
        delete(spark, layout.part(name))


def read_text(spark: SparkSession, uri: str) -> str:
    """The UTF-8 text of the file at ``uri`` (Spark's text source, the whole file as one row).

    Pitfall: a missing file raises ``AnalysisException``; check ``jvm.exists`` first.
    """
    return str(spark.read.text(uri, wholetext=True).first()[0])  # type: ignore[index]


def write_manifest(spark: SparkSession, layout: RunLayout, manifest: Manifest) -> None:
    write_text(spark, layout.manifest, manifest.dumps())


def write_parquet(df: DataFrame, uri: str) -> None:
    df.write.mode("overwrite").parquet(uri)

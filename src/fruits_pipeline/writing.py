"""Writing results: Parquet outputs and ``manifest.json``, through Spark's Hadoop filesystem.

Going through Hadoop's ``FileSystem`` (not Python's ``open``) is what makes the same code write
to a local folder here and to S3 (S3A) on the cluster and off it.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession

from fruits_pipeline.manifest import Manifest

# What a run writes under --output; --overwrite removes exactly these, nothing else.
MANIFEST = "manifest.json"
STAGING = "staging"
OUTPUT_PARTS = (MANIFEST, "features", "errors", "pca", "model", "inventory", STAGING)


def child_uri(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def _filesystem(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)  # type: ignore[union-attr]
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path  # type: ignore[union-attr]


def exists(spark: SparkSession, uri: str) -> bool:
    filesystem, path = _filesystem(spark, uri)
    return bool(filesystem.exists(path))


def delete(spark: SparkSession, uri: str) -> None:
    """Delete ``uri`` recursively if it exists."""
    filesystem, path = _filesystem(spark, uri)
    if filesystem.exists(path):
        filesystem.delete(path, True)


def file_length(spark: SparkSession, uri: str) -> int:
    """Size of the file at ``uri`` in bytes."""
    filesystem, path = _filesystem(spark, uri)
    return int(filesystem.getFileStatus(path).getLen())


def existing_outputs(spark: SparkSession, output_uri: str) -> list[str]:
    """The names in ``OUTPUT_PARTS`` already present under ``output_uri``."""
    return [name for name in OUTPUT_PARTS if exists(spark, child_uri(output_uri, name))]


def clear_outputs(spark: SparkSession, output_uri: str) -> None:
    """Remove a previous run's outputs, the manifest first so no stale success survives."""
    for name in OUTPUT_PARTS:
        delete(spark, child_uri(output_uri, name))


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``uri``, replacing any existing file."""
    filesystem, path = _filesystem(spark, uri)
    stream = filesystem.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_text(spark: SparkSession, uri: str) -> str:
    """The UTF-8 text of the file at ``uri``."""
    filesystem, path = _filesystem(spark, uri)
    stream = filesystem.open(path)
    try:
        jvm = spark.sparkContext._jvm
        data = jvm.org.apache.commons.io.IOUtils.toByteArray(stream)  # type: ignore[union-attr]
    finally:
        stream.close()
    return bytes(data).decode("utf-8")


def write_manifest(spark: SparkSession, output_uri: str, manifest: Manifest) -> None:
    write_text(spark, child_uri(output_uri, MANIFEST), manifest.dumps())


def write_parquet(df: DataFrame, uri: str) -> None:
    df.write.mode("overwrite").parquet(uri)

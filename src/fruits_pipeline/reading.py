"""Reading images with Spark's ``binaryFile`` source and labelling them from their folders.

The reader is the I/O edge; ``with_label`` and ``with_split`` are pure ``DataFrame -> DataFrame``
transforms that only look at the ``path`` column, so they can be tested on a tiny local frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits_pipeline.schema import CONTENT, KEY_COLUMNS, LABEL, PATH, SPLIT

# Hadoop glob: *.jpg and *.jpeg in any letter case (Fruits-360 and phone exports mix them).
IMAGE_GLOB = "*.{[jJ][pP][gG],[jJ][pP][eE][gG]}"
BINARY_FILE_SCHEMA = "path string, modificationTime timestamp, length long, content binary"
# The characters Hadoop's glob gives a meaning to; a backslash before one makes it literal.
GLOB_SPECIAL = r"([\\{}\[\]*?])"
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


def read_images(spark: SparkSession, input_uri: str) -> DataFrame:
    """List and load every JPEG file under ``input_uri``, recursively.

    Returns the ``binaryFile`` frame: ``path`` (string URI, not percent-encoded, e.g.
    ``file:/data/Training/Apple Red 1/0_100.jpg``), ``modificationTime``, ``length`` (bytes) and
    ``content`` (the raw bytes). Nothing is decoded here; selecting without ``content`` lets Spark
    skip reading the files, so ``read_images(...).select("path").count()`` is a cheap listing.

    Pitfall: a path that does not exist raises ``AnalysisException``; a folder with no matching
    file gives an empty frame. The job turns both into ``NoInputError``.
    """
    return (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", IMAGE_GLOB)
        .load(input_uri)
    )


def read_image_files(paths: DataFrame) -> DataFrame:
    """Load exactly the files named in ``paths`` (a ``path`` column, as ``read_images`` writes
    it), with the columns and values ``read_images`` gives them; no other file's bytes are read.

    The names are collected to the driver, each glob character escaped (so ``c[1].jpg`` or
    ``a*b.jpg`` is that one file), and handed to the ``binaryFile`` reader as a list of paths.
    The reader checks and lists every named file when it is built (here, not lazily), with one
    listing task per core: Spark's default is one task per file, whose overhead outweighs the
    listing (README, "Incremental runs"). Pitfall: a named file deleted since it was listed raises
    ``AnalysisException`` (PATH_NOT_FOUND).
    """
    spark = paths.sparkSession
    escaped = paths.select(F.regexp_replace(PATH, GLOB_SPECIAL, r"\\$1").alias(PATH))
    names = [row[PATH] for row in escaped.collect()]
    if not names:
        return spark.createDataFrame([], BINARY_FILE_SCHEMA)
    before = spark.conf.get(LISTING_PARALLELISM, None)
    spark.conf.set(LISTING_PARALLELISM, str(spark.sparkContext.defaultParallelism))
    try:
        return (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")  # no partition columns from a=b folders
            .load(names)
        )
    finally:
        if before is None:
            spark.conf.unset(LISTING_PARALLELISM)
        else:
            spark.conf.set(LISTING_PARALLELISM, before)


def _path_segment_from_end(position: int) -> Column:
    # element_at counts from the end with negative indexes: -1 is the file name.
    return F.element_at(F.split(F.col(PATH), "/"), position)


def with_label(df: DataFrame) -> DataFrame:
    """Add ``label``: the name of the file's parent folder, exactly as written.

    ``.../Training/Apple Red 1/0_100.jpg`` gives ``Apple Red 1`` (spaces, case and non-ASCII kept).
    """
    return df.withColumn(LABEL, _path_segment_from_end(-2))


def with_split(split_names: Sequence[str]) -> Callable[[DataFrame], DataFrame]:
    """Return a transform adding ``split``: the grandparent folder when it names a split.

    ``.../Training/Apple Red 1/0_100.jpg`` gives ``Training`` when ``"Training"`` is in
    ``split_names``; any other grandparent (or none) gives null, so unsplit data still flows.
    """

    def transform(df: DataFrame) -> DataFrame:
        grandparent = _path_segment_from_end(-3)
        return df.withColumn(
            SPLIT, F.when(grandparent.isin(list(split_names)), grandparent).otherwise(F.lit(None))
        )

    return transform


def to_images(split_names: Sequence[str]) -> Callable[[DataFrame], DataFrame]:
    """Return a transform from a ``binaryFile`` frame to the images the model gets:
    ``path, label, split, content`` (``with_label``, ``with_split``; nothing is read yet)."""

    def transform(df: DataFrame) -> DataFrame:
        labelled = df.transform(with_label).transform(with_split(split_names))
        return labelled.select(*KEY_COLUMNS, CONTENT)

    return transform

"""Every use of Spark's JVM internals (py4j, ``_jvm``, ``_jsc``, ``_jdf``) in the job.

Each function below reaches into the JVM for one thing PySpark has no public API for, and says
which (``launched_by_spark_submit`` only tells whether spark-submit started the JVM, which
decides how the others may reach it). Everything else in the package goes through PySpark's
public API, so an upgrade of Spark that changes these internals breaks this module only (its
callers' tests cover it: tests/test_accounting.py, test_reduction.py, test_incremental.py,
test_manifest.py, test_logs.py, test_main.py).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np
from pyspark import SparkContext
from pyspark.ml.common import _py2java
from pyspark.ml.feature import PCAModel, StandardScalerModel
from pyspark.ml.linalg import DenseMatrix, DenseVector
from pyspark.sql import DataFrame, SparkSession


def _hadoop_path(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """``uri``'s Hadoop ``FileSystem`` (S3A, local, HDFS: as Spark's own I/O resolves it) and
    its ``Path``, configured with the session's Hadoop settings (S3A credentials, regions)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)  # type: ignore[union-attr]
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    return path.getFileSystem(conf), path


def exists(spark: SparkSession, uri: str) -> bool:
    """Whether a file or folder is at ``uri``. No public API: PySpark reads and writes data
    sets, it does not ask a file system whether a path exists."""
    filesystem, path = _hadoop_path(spark, uri)
    return bool(filesystem.exists(path))


def delete(spark: SparkSession, uri: str) -> None:
    """Delete ``uri`` recursively if it exists. No public API: PySpark's writers only replace
    a data set (``mode("overwrite")``), they cannot remove one."""
    filesystem, path = _hadoop_path(spark, uri)
    if filesystem.exists(path):
        filesystem.delete(path, True)


def file_length(spark: SparkSession, uri: str) -> int:
    """Size in bytes of the file at ``uri``. No public API for one file's status; the
    ``binaryFile`` source skips the zero-byte files this is asked about."""
    filesystem, path = _hadoop_path(spark, uri)
    return int(filesystem.getFileStatus(path).getLen())


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write ``text`` (UTF-8) as the single file ``uri``, replacing it. No public API: Spark's
    text writer writes a folder of part files, not one named file."""
    filesystem, path = _hadoop_path(spark, uri)
    stream = filesystem.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def normalized_path(spark: SparkSession, uri: str) -> str:
    """``uri`` as Hadoop writes it (``file:/x`` for ``file:///x``), to compare with the paths
    the other functions return. No public API for Hadoop's ``Path`` normalisation."""
    return str(_hadoop_path(spark, uri)[1].toString())


def glob_files(spark: SparkSession, pattern: str) -> set[str]:
    """Every file matching the Hadoop glob ``pattern``, and every file below a matching folder.

    No public API: Spark's file sources never list a name starting with ``_`` or ``.``, which
    is what the accounting looks for with this (one py4j call per match: such names are rare).
    """
    filesystem, path = _hadoop_path(spark, pattern)
    found: set[str] = set()
    for status in filesystem.globStatus(path) or []:
        if status.isDirectory():
            files = filesystem.listFiles(status.getPath(), True)
            while files.hasNext():
                found.add(str(files.next().getPath().toString()))
        else:
            found.add(str(status.getPath().toString()))
    return found


def input_files(scan: DataFrame) -> tuple[DataFrame, int]:
    """The files ``scan`` reads, as a one-column frame (``value``: URI strings, as
    ``DataFrame.inputFiles`` writes them) and their count.

    The public ``DataFrame.inputFiles()`` returns a Python list: every name would go through
    the driver's Python, whose memory would then grow with the input. Here the names stay in
    the JVM: the Java ``String[]`` becomes a ``Dataset`` there, in a few py4j calls whatever
    its length.
    """
    spark = scan.sparkSession
    jvm, gateway = spark.sparkContext._jvm, spark.sparkContext._gateway
    uris = scan._jdf.inputFiles()
    # py4j does not pass a String[] where a method takes Object... (Arrays.asList): copied first.
    objects = gateway.new_array(jvm.java.lang.Object, len(uris))  # type: ignore[union-attr]
    jvm.java.lang.System.arraycopy(uris, 0, objects, 0, len(uris))  # type: ignore[union-attr]
    listed = spark._jsparkSession.createDataset(  # type: ignore[union-attr]
        jvm.java.util.Arrays.asList(objects),  # type: ignore[union-attr]
        jvm.org.apache.spark.sql.Encoders.STRING(),  # type: ignore[union-attr]
    ).toDF()
    return DataFrame(listed, spark), len(uris)


def standard_scaler_model(
    spark: SparkSession, mean: np.ndarray, std: np.ndarray
) -> StandardScalerModel:
    """A ``StandardScalerModel(withMean=True, withStd=True)`` holding ``mean`` and ``std``.

    No public API: Spark builds one only by fitting ``StandardScaler``; the JVM class's
    constructor takes the numbers directly.
    """
    sc = spark.sparkContext
    java = sc._jvm.org.apache.spark.ml.feature.StandardScalerModel(  # type: ignore[union-attr]
        f"StandardScalerModel_{uuid.uuid4().hex[:12]}",
        _py2java(sc, DenseVector(std.tolist())),
        _py2java(sc, DenseVector(mean.tolist())),
    )
    java.set(java.withMean(), True)
    java.set(java.withStd(), True)
    model = StandardScalerModel(java)
    model._transfer_params_from_java()  # so getWithMean() and friends read the JVM's values
    return model


def pca_model(spark: SparkSession, components: np.ndarray, explained: np.ndarray) -> PCAModel:
    """A ``PCAModel`` of ``components`` ``(d, k)`` and their ``explained`` variance ``(k,)``.

    No public API: Spark builds one only by fitting ``PCA``; the JVM class's constructor takes
    the numbers directly.
    """
    sc = spark.sparkContext
    rows, cols = components.shape
    matrix = DenseMatrix(rows, cols, components.ravel(order="F").tolist())
    java = sc._jvm.org.apache.spark.ml.feature.PCAModel(  # type: ignore[union-attr]
        f"PCAModel_{uuid.uuid4().hex[:12]}",
        _py2java(sc, matrix),
        _py2java(sc, DenseVector(explained.tolist())),
    )
    java.set(java.k(), cols)  # transform validates k against the matrix width
    model = PCAModel(java)
    model._transfer_params_from_java()
    return model


def launched_by_spark_submit() -> bool:
    # spark-submit starts the JVM first and hands Python its gateway through this variable.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _logging_jvm(spark: SparkSession | None) -> Any:
    """The session's JVM; with None, the JVM ``spark-submit`` started, before any session
    exists. No public API reaches it then: PySpark connects to it when the first
    ``SparkContext`` is made, which logs its start-up lines first.

    Raises:
        RuntimeError: None, but this process was not started by ``spark-submit`` (connecting
            would launch a JVM without the job's options).
    """
    if spark is not None:
        return spark.sparkContext._jvm
    if not launched_by_spark_submit():
        raise RuntimeError("no JVM started by spark-submit to configure before the session")
    SparkContext._ensure_initialized()
    return SparkContext._jvm


def set_log_levels(spark: SparkSession | None, loggers: list[str], level: str) -> None:
    """Set named log4j2 loggers (``""``: the root logger) to ``level`` in the session's running
    JVM, or with None in the one ``spark-submit`` started (``_logging_jvm``): PySpark's
    ``SparkContext.setLogLevel`` sets the root logger only, and only once a context exists."""
    jvm = _logging_jvm(spark)
    configurator = jvm.org.apache.logging.log4j.core.config.Configurator  # type: ignore[union-attr]
    chosen = jvm.org.apache.logging.log4j.Level.getLevel(level)  # type: ignore[union-attr]
    for name in loggers:
        configurator.setLevel(name, chosen)


def deny_log_messages(spark: SparkSession | None, denied: dict[str, str]) -> None:
    """Drop the messages of each named log4j2 logger that match its regex (``{logger: regex}``)
    in the session's running JVM (None: see ``set_log_levels``), whatever their level; other
    messages pass as before. No public API: PySpark sets levels (the root logger's only), not
    filters.

    A logger that already has a filter of its own keeps it and gets none: the configuration
    file's (``logs.log4j2_java_option``), or an earlier call's, so a session that serves many
    runs does not pile filters up.

    Pitfall: a logger with no configuration of its own shares its parent's, so each gets one
    (inheriting level and appenders) before its filter is added; filtering the parent's would
    drop the regex's matches from every logger under it.
    """
    jvm = _logging_jvm(spark)
    core = jvm.org.apache.logging.log4j.core  # type: ignore[union-attr]
    context = jvm.org.apache.logging.log4j.LogManager.getContext(False)  # type: ignore[union-attr]
    configuration = context.getConfiguration()
    deny, neutral = core.Filter.Result.DENY, core.Filter.Result.NEUTRAL
    for name, regex in denied.items():
        logger = configuration.getLoggerConfig(name)
        if logger.getName() != name:
            logger = core.config.LoggerConfig(name, None, True)
            configuration.addLogger(name, logger)
        elif logger.getFilter() is not None:
            continue
        logger.addFilter(core.filter.RegexFilter.createFilter(regex, None, False, deny, neutral))
    context.updateLoggers()

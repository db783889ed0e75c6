"""The SparkSession for a run: built at the edge (``cli.py``) and handed to ``job.run_job``."""

from __future__ import annotations

import os
import sys

from pyspark.errors import PySparkRuntimeError
from pyspark.sql import SparkSession

from fruits_pipeline.config import FILE_OPEN_COST_BYTES, MAX_PARTITION_BYTES, JobConfig
from fruits_pipeline.errors import PipelineError, UsageError
from fruits_pipeline.jars import ICEBERG_JARS, S3A_JARS, classpath_settings, find_jars
from fruits_pipeline.jvm import launched_by_spark_submit
from fruits_pipeline.logs import log4j2_java_option, quiet_running_jvm
from fruits_pipeline.model import TENSORFLOW_ENV
from fruits_pipeline.s3a import s3_endpoint, s3a_settings
from fruits_pipeline.storage import is_s3_uri

# The job's JVMs share their cores with the model. Their work is light (read files, feed the
# Python workers, write Parquet), but the C2 JIT compiler spent more CPU compiling it than it
# saved; the C1 compiler alone compiles cheaply and is plenty (docs/performance.md). Local runs
# set it on the driver here; conf/emr-configurations.json sets the same on EMR's driver and
# executors (a test checks).
JVM_OPTIONS = "-XX:TieredStopAtLevel=1"


def session_settings(config: JobConfig) -> dict[str, str]:
    """The job's Spark settings (the same as conf/emr-configurations.json's, a test checks)."""
    quiet = {} if config.verbose else {"spark.log.level": "WARN"}
    return quiet | {
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(config.arrow_batch_size),
        "spark.python.worker.reuse": "true",
        "spark.speculation": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": TENSORFLOW_ENV["TF_CPP_MIN_LOG_LEVEL"],
        "spark.executorEnv.TF_CPU_ALLOCATOR_USE_BFC": TENSORFLOW_ENV["TF_CPU_ALLOCATOR_USE_BFC"],
        "spark.sql.files.openCostInBytes": str(FILE_OPEN_COST_BYTES),
        "spark.sql.files.maxPartitionBytes": str(MAX_PARTITION_BYTES),
    }


def running_session() -> SparkSession | None:
    """The session already running in this process, if any: the current thread's active one,
    else the default one the builder made.

    ``SparkSession.getActiveSession()`` alone is per thread (a JVM thread-local): from another
    thread, or once this one is served by a new JVM thread, it answers None while a session
    runs, and a run would then take the session for its own and stop it at its end.
    """
    try:
        return SparkSession.active()
    except PySparkRuntimeError:
        return None


def build_session(config: JobConfig, bucket_regions: dict[str, str]) -> SparkSession:
    """The SparkSession for a run. ``--master`` wins; else spark-submit's; else ``local[*]``.

    A Spark started from here (not by spark-submit) has no S3 connector: when the input or the
    output is on S3 it gets S3A (``s3a.s3a_settings``), the buckets at their own regions.

    Raises:
        UsageError: a session is already running in this process with another master than
            ``--master``: ``getOrCreate`` would silently keep the running one.
    """
    active = running_session()
    if active is not None:
        running = active.sparkContext.master
        if config.master and config.master != running:
            raise UsageError(
                f"a Spark session with master {running} is already running in this process; "
                f"--master {config.master} cannot apply to it"
            )
        for key, value in session_settings(config).items():
            if key.startswith("spark.sql."):  # the runtime settings a running session takes
                active.conf.set(key, value)
        return active
    builder = SparkSession.builder.appName("fruits-pipeline")
    for key, value in session_settings(config).items():
        builder = builder.config(key, value)
    java_options: list[str] = []
    master = config.master or (None if launched_by_spark_submit() else "local[*]")
    if master:
        builder = builder.master(master)
    if master and master.startswith("local") and not launched_by_spark_submit():
        # Workers must run this interpreter (the one with the engine and this package), not the
        # python3 on PATH. When Python starts the JVM, PySpark 3.5 takes the workers' Python
        # from PYSPARK_PYTHON only (the spark.pyspark.python conf is read by spark-submit).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        java_options.append(JVM_OPTIONS)
    if not config.verbose:
        if launched_by_spark_submit():
            quiet_running_jvm()  # its JVM runs already: before the context logs its start-up
        else:
            java_options.append(log4j2_java_option())  # read as the JVM starts: no WARN from then
    if java_options:
        builder = builder.config("spark.driver.extraJavaOptions", " ".join(java_options))
    for key, value in extra_jar_settings(config, bucket_regions).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except PySparkRuntimeError as error:
        if error.getErrorClass() != "JAVA_GATEWAY_EXITED":
            raise
        raise PipelineError(
            "Spark's JVM did not start (its own message is above): the job needs Java 17, "
            "found through JAVA_HOME or else on PATH"
        ) from error
    return session


def extra_jar_settings(config: JobConfig, bucket_regions: dict[str, str]) -> dict[str, str]:
    """Off spark-submit, the jars Spark lacks and their settings: S3A when the input, the
    output or the table is on S3; Iceberg's runtime with ``--table``. Empty under
    spark-submit (EMR brings both)."""
    if launched_by_spark_submit():
        return {}
    uris = (config.input_uri, config.output_uri, config.table or "", config.warehouse or "")
    s3 = any(is_s3_uri(uri) for uri in uris)
    jars = (S3A_JARS if s3 else ()) + (ICEBERG_JARS if config.table else ())
    if not jars:
        return {}
    settings = classpath_settings(find_jars(jars))
    if s3:
        settings.update(s3a_settings(bucket_regions, s3_endpoint()))
    return settings


class RunSession:
    """The run's session factory (``job.SessionFactory``), and its end: ``close`` stops the
    session if this run started it.

    Why stop: a Spark left running when the Python driver exits is stopped by the JVM's
    shutdown hook, racing the cluster manager. Under spark-submit on ``local-cluster`` that
    race relaunched executors for minutes after the job had finished (measured: 2 to 15 min
    before the JVM exited); on YARN the application's end is only reported once it stops. A
    session that was already running (a notebook's, a test's) is left to its owner.
    """

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.session: SparkSession | None = None
        self.started = False

    def __call__(self, bucket_regions: dict[str, str]) -> SparkSession:
        self.started = running_session() is None
        self.session = build_session(self.config, bucket_regions)
        return self.session

    def close(self) -> None:
        if self.session is not None and self.started:
            self.session.stop()

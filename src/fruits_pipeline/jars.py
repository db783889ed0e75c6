"""The jars a Spark started off EMR needs beyond PySpark's own, and where they are cached.

``scripts/fetch_jars.sh`` copies them from Maven Central (``mvn dependency:copy``), checks
each one's sha256 and keeps them outside the repository. On EMR none is used: EMR serves
``s3://`` with its own S3A and brings Iceberg with the ``iceberg-defaults`` classification.
"""

from __future__ import annotations

import os
from pathlib import Path

from fruits_pipeline.errors import UsageError

# Exactly what scripts/fetch_jars.sh fetches (and checks by sha256). hadoop-aws matches
# PySpark 3.5's own Hadoop (3.3.4); the SDK bundle is the one it was built against.
S3A_JARS = ("hadoop-aws-3.3.4.jar", "aws-java-sdk-bundle-1.12.262.jar")
# The runtime carries Iceberg's Spark catalog and SQL extensions (MERGE INTO); the AWS bundle
# (AWS SDK v2) carries its Glue catalog.
ICEBERG_JARS = ("iceberg-spark-runtime-3.5_2.12-1.10.1.jar", "iceberg-aws-bundle-1.10.1.jar")
JARS_ENV = "FRUITS_PIPELINE_JARS"


def jars_dir() -> Path:
    """Where ``scripts/fetch_jars.sh`` keeps the jars: ``$FRUITS_PIPELINE_JARS``, else
    ``${XDG_CACHE_HOME:-~/.cache}/fruits-pipeline/jars`` (the script's default too)."""
    if os.environ.get(JARS_ENV):
        return Path(os.environ[JARS_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "fruits-pipeline" / "jars"


def find_jars(names: tuple[str, ...], directory: Path | None = None) -> list[Path]:
    """The paths of the jars ``names`` (``S3A_JARS``, ``ICEBERG_JARS``) in ``directory``
    (default ``jars_dir()``).

    Raises:
        UsageError: a jar is missing; the message says how to fetch them.
    """
    folder = directory or jars_dir()
    jars = [folder / name for name in names]
    missing = [jar.name for jar in jars if not jar.is_file()]
    if missing:
        raise UsageError(
            f"this run needs jars that Spark does not ship ({', '.join(missing)} missing in "
            f"{folder}): run scripts/fetch_jars.sh once"
        )
    return jars


def classpath_settings(jars: list[Path]) -> dict[str, str]:
    """Spark configuration that puts ``jars`` on the driver's and executors' class path.

    Pitfall: the class path must be set before the JVM starts. Passed to the session builder
    that starts it, or to ``spark-submit`` (``step.conf_options``), it is; on a running session
    it is silently ignored.
    """
    classpath = os.pathsep.join(str(jar) for jar in jars)
    return {"spark.driver.extraClassPath": classpath, "spark.executor.extraClassPath": classpath}

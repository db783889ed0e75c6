"""The job's own log4j2 configuration: a successful run prints no WARN line a user cannot act on.

Spark's JVM logs at WARN by default. A few libraries warn on every run about things that are
expected here and that nobody running the job can change: Hadoop has no native library on a
laptop, netlib falls back to Java BLAS and LAPACK, and a local Spark names the loopback address.
Those loggers are raised to ERROR (``QUIET_LOGGERS``); everything else stays at WARN, so a real
problem still shows. ``--verbose`` leaves Spark's own logging as it is.

Two ways in, for the two ways the JVM starts:

- Python starts it (``fruits-pipeline`` on a laptop): ``log4j2_java_option`` writes the
  configuration to a file and names it with ``-Dlog4j2.configurationFile``, so even the lines
  logged while Spark starts follow it.
- ``spark-submit`` started it (EMR, or the README's command on a laptop): ``quiet_running_jvm``
  sets the same levels and filters in the running JVM before the session starts, so the
  context's own start-up lines follow them too. Only what the launcher logged before Python
  ran escapes.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from fruits_pipeline.jvm import deny_log_messages, set_log_levels

# logger -> why its warnings are noise in this job.
QUIET_LOGGERS = {
    "org.apache.hadoop.util.NativeCodeLoader": "no native Hadoop library off a cluster",
    "dev.ludovic.netlib": "Spark ML falls back to Java BLAS/LAPACK: slower, same results",
    "org.apache.spark.util.Utils": "a local Spark binds to the loopback address",
    "org.apache.hadoop.metrics2": "Hadoop metrics have no sink configured",
}

# Messages dropped whatever their logger's level. Spark ML's PCAModel writer puts the d x k
# component matrix of model/ (3 MB at k = 315) into the one task that writes it, and Spark then
# warns of a large task that nobody running the job can shrink. The message names no more than
# the stage, so it is dropped for every stage: the job's own functions send their arrays as
# broadcasts (``reduction.project``), which keeps their tasks small.
#
# Spark ML's tree learners (the probe's decision tree and random forest) put the trees being
# grown in every task's closure; Spark then ships that closure as a broadcast, as it should,
# and says so at WARN (up to 13 MB for a 20-tree forest at 120 classes). The job's own closures
# carry no arrays, so that notice is noise too.
DENIED_MESSAGES = {
    "org.apache.spark.scheduler.TaskSetManager": r".*contains a task of very large size.*",
    "org.apache.spark.scheduler.DAGScheduler": r"Broadcasting large task binary with size .*",
}

_APPENDER = """\
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
"""


def log4j2_properties() -> str:
    """The job's log4j2 configuration: WARN and above to stderr, ``QUIET_LOGGERS`` at ERROR,
    ``DENIED_MESSAGES`` dropped."""
    lines = [_APPENDER]
    for index, name in enumerate(QUIET_LOGGERS):
        lines.append(f"logger.quiet{index}.name = {name}\nlogger.quiet{index}.level = error\n")
    for index, (name, regex) in enumerate(DENIED_MESSAGES.items()):
        key = f"logger.deny{index}"
        lines.append(
            f"{key}.name = {name}\n{key}.filter.message.type = RegexFilter\n"
            f"{key}.filter.message.regex = {regex}\n{key}.filter.message.onMatch = DENY\n"
            f"{key}.filter.message.onMismatch = NEUTRAL\n"
        )
    return "".join(lines)


def log4j2_java_option(folder: Path | None = None) -> str:
    """``-Dlog4j2.configurationFile=...`` for a JVM the job starts; the file is written to
    ``folder`` (default: a fresh temporary folder, removed when this Python process exits, as
    the JVM it starts does; log4j2 may read the file at any time until then)."""
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="fruits-log4j2-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    target = folder / "log4j2.properties"
    target.write_text(log4j2_properties(), encoding="utf-8")
    return f"-Dlog4j2.configurationFile={target.as_uri()}"


# log4j2's name for the root logger.
ROOT_LOGGER = ""


def quiet_running_jvm() -> None:
    """The root logger at WARN, ``QUIET_LOGGERS`` at ERROR and ``DENIED_MESSAGES`` dropped in
    the JVM ``spark-submit`` started, before the session exists (``jvm.set_log_levels``); the
    session's start-up keeps them."""
    set_log_levels(None, [ROOT_LOGGER], "WARN")
    set_log_levels(None, list(QUIET_LOGGERS), "ERROR")
    deny_log_messages(None, DENIED_MESSAGES)

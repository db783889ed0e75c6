"""logs.py: the job's log4j2 configuration (the console of a whole run is checked in
tests/e2e/test_report_120_classes.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from fruits_pipeline.jvm import deny_log_messages, set_log_levels
from fruits_pipeline.logs import (
    DENIED_MESSAGES,
    QUIET_LOGGERS,
    ROOT_LOGGER,
    log4j2_java_option,
    log4j2_properties,
)

pytestmark = pytest.mark.unit


def properties(text: str) -> dict[str, str]:
    pairs = (line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    return {key: value for key, value in pairs}


def test_noisy_loggers_are_raised_to_error_and_the_rest_stays_at_warn() -> None:
    config = properties(log4j2_properties())
    assert config["rootLogger.level"] == "warn"
    quiet = {
        key.removesuffix(".name"): name
        for key, name in config.items()
        if key.startswith("logger.quiet") and key.endswith(".name")
    }
    assert set(quiet.values()) == set(QUIET_LOGGERS)
    assert {config[f"{key}.level"] for key in quiet} == {"error"}


def test_the_large_task_notices_of_spark_ml_are_denied_and_nothing_else() -> None:
    config = properties(log4j2_properties())
    regex, binary = DENIED_MESSAGES.values()
    assert config["logger.deny0.filter.message.regex"] == regex
    assert config["logger.deny1.filter.message.regex"] == binary
    assert config["logger.deny0.filter.message.onMismatch"] == "NEUTRAL"
    assert re.fullmatch(binary, "Broadcasting large task binary with size 12.7 MiB")
    assert not re.fullmatch(binary, "ShuffleMapStage 3 (parquet) failed in 2.0 s")
    warning = (
        "Stage 28 contains a task of very large size (3226 KiB). The maximum recommended task "
        "size is 1000 KiB."
    )
    assert re.fullmatch(regex, warning)
    assert not re.fullmatch(regex, "Lost task 0.0 in stage 3.0 (TID 7): ExecutorLostFailure")


def test_the_java_option_names_a_file_holding_the_configuration(tmp_path: Path) -> None:
    option = log4j2_java_option(tmp_path)
    assert option.startswith("-Dlog4j2.configurationFile=file:")
    written = Path(urlparse(option.split("=", 1)[1]).path)
    assert written.parent == tmp_path and written.read_text() == log4j2_properties()


def test_the_default_folder_is_removed_when_the_process_exits() -> None:
    script = (
        "from pathlib import Path; from urllib.parse import urlparse\n"
        "from fruits_pipeline.logs import log4j2_java_option\n"
        "written = Path(urlparse(log4j2_java_option().split('=', 1)[1]).path)\n"
        "assert written.is_file()\n"
        "print(written)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    written = Path(completed.stdout.strip())
    assert written.name == "log4j2.properties"
    assert not written.parent.exists()


@pytest.mark.spark
def test_denied_messages_are_dropped_in_a_running_jvm(spark) -> None:
    name = "fruits.test.denied"
    jvm = spark.sparkContext._jvm
    core = jvm.org.apache.logging.log4j.core
    written = jvm.java.io.StringWriter()
    layout = core.layout.PatternLayout.newBuilder().withPattern("%p %m%n").build()
    appender = core.appender.WriterAppender.createAppender(
        layout, None, written, "test-writer", False, True
    )
    appender.start()
    deny_log_messages(spark, {name: r".*very large.*"})
    deny_log_messages(spark, {name: r".*never applied.*"})  # a second call adds nothing
    context = jvm.org.apache.logging.log4j.LogManager.getContext(False)
    context.getConfiguration().getLoggerConfig(name).addAppender(appender, None, None)
    context.updateLoggers()
    logger = jvm.org.apache.logging.log4j.LogManager.getLogger(name)
    logger.warn("a task of very large size")
    logger.warn("a lost task, never applied")
    logger.error("an executor was lost")
    assert written.toString().splitlines() == [
        "WARN a lost task, never applied",
        "ERROR an executor was lost",
    ]


def test_no_jvm_is_configured_before_a_session_unless_spark_submit_started_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Connecting here would launch a JVM without the job's options.
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    with pytest.raises(RuntimeError, match="spark-submit"):
        set_log_levels(None, [ROOT_LOGGER], "WARN")

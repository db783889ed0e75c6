"""The executor and driver sizes in conf/emr-configurations.json fit what
YARN gives a node of the default instance type (scripts/create_cluster.sh), with the Python
workers' memory counted.

YARN kills a container whose processes (the JVM and the Python workers it starts) use more than
it asked for: ``spark.executor.memory`` (the heap) + ``spark.executor.memoryOverhead``
(everything else: JVM off-heap and the workers) + ``spark.executor.pyspark.memory`` if set.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Node:
    """What YARN offers on one node: EMR's default ``yarn.nodemanager.resource.memory-mb`` for
    the instance type (Amazon EMR Release Guide, "Task configuration" defaults) and its vCPUs."""

    instance_type: str
    vcpus: int
    yarn_memory_mb: int


# The xlarge general-purpose types the runbook compares: 4 vCPUs, 16 GiB, of which EMR gives
# YARN 12,288 MB (emr-hadoop-task-config, yarn.nodemanager.resource.memory-mb).
NODES = {
    name: Node(name, vcpus=4, yarn_memory_mb=12288)
    for name in ("m5.xlarge", "m6i.xlarge", "m7i.xlarge")
}


def default_instance_type() -> str:
    script = (ROOT / "scripts" / "create_cluster.sh").read_text()
    return re.search(r"\bINSTANCE_TYPE=(\S+)", script).group(1)


DEFAULT_NODE = NODES[default_instance_type()]
# Spark's own floor for the JVM's off-heap share of a container: max(384 MB, 10 % of the heap).
JVM_OVERHEAD_MIN_MB, JVM_OVERHEAD_FACTOR = 384, 0.10


def spark_defaults() -> dict[str, str]:
    listing = json.loads((ROOT / "conf" / "emr-configurations.json").read_text())
    (defaults,) = [c["Properties"] for c in listing if c["Classification"] == "spark-defaults"]
    return defaults


def megabytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([mg])", size.lower()).groups()
    return int(number) * (1024 if unit == "g" else 1)


def measured_rss_mb() -> dict[str, float]:
    """Peak RSS per process from the throughput benchmark (N = 8,000): worker, driver Python."""
    results = json.loads((ROOT / "benchmarks" / "results" / "throughput.json").read_text())
    return results["ours"]["peak_rss_mb"]


def jvm_overhead_mb(heap_mb: int) -> int:
    return max(JVM_OVERHEAD_MIN_MB, int(JVM_OVERHEAD_FACTOR * heap_mb))


def sizing(defaults: dict[str, str]) -> dict[str, int]:
    """The containers the configuration asks YARN for, in MB."""
    pyspark = megabytes(defaults.get("spark.executor.pyspark.memory", "0m"))
    executor = (
        megabytes(defaults["spark.executor.memory"])
        + megabytes(defaults["spark.executor.memoryOverhead"])
        + pyspark
    )
    driver = megabytes(defaults["spark.driver.memory"]) + megabytes(
        defaults["spark.driver.memoryOverhead"]
    )
    return {"executor": executor, "driver": driver}


def problems(defaults: dict[str, str], node: Node, rss: dict[str, float]) -> list[str]:
    """Why the configuration would not run on ``node`` (empty when it fits)."""
    found = []
    cores = int(defaults["spark.executor.cores"])
    containers = sizing(defaults)
    if cores > node.vcpus:
        found.append(f"{cores} executor cores on a {node.vcpus}-vCPU node")
    # Cluster mode: the driver's container lands on a core node next to an executor.
    if containers["executor"] + containers["driver"] > node.yarn_memory_mb:
        found.append(
            f"executor {containers['executor']} MB + driver {containers['driver']} MB > "
            f"{node.yarn_memory_mb} MB of YARN memory on {node.instance_type}"
        )
    heap = megabytes(defaults["spark.executor.memory"])
    outside_heap = cores * rss["python_worker"] + jvm_overhead_mb(heap)
    if megabytes(defaults["spark.executor.memoryOverhead"]) < outside_heap:
        found.append(
            f"executor overhead below {outside_heap:.0f} MB: {cores} Python workers of "
            f"{rss['python_worker']:.0f} MB each and the JVM's off-heap share"
        )
    driver_outside = rss["driver_python"] + jvm_overhead_mb(
        megabytes(defaults["spark.driver.memory"])
    )
    if megabytes(defaults["spark.driver.memoryOverhead"]) < driver_outside:
        found.append(f"driver overhead below {driver_outside:.0f} MB (its Python loads TensorFlow)")
    if "spark.executor.pyspark.memory" in defaults:
        # PySpark turns it into RLIMIT_AS, an address-space cap per worker, and TensorFlow maps
        # about twice its resident memory (VmSize 1.75 GB for 0.8 GB RSS, measured here).
        found.append("spark.executor.pyspark.memory caps each TensorFlow worker's address space")
    return found


def test_the_shipped_sizes_fit_the_default_node_with_the_workers_counted() -> None:
    assert problems(spark_defaults(), DEFAULT_NODE, measured_rss_mb()) == []


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("spark.executor.memory", "8g", "of YARN memory"),
        ("spark.executor.memoryOverhead", "1g", "Python workers"),
        ("spark.executor.cores", "8", "vCPU"),
        ("spark.driver.memoryOverhead", "384m", "driver overhead"),
        ("spark.executor.pyspark.memory", "2g", "address space"),
    ],
)
def test_the_check_refuses_sizes_that_would_not_fit(name: str, value: str, reason: str) -> None:
    changed = {**spark_defaults(), name: value}
    assert any(reason in problem for problem in problems(changed, DEFAULT_NODE, measured_rss_mb()))


def test_the_runbook_memory_table_is_the_configuration() -> None:
    """Every number of the runbook's memory table is read from the configuration here."""
    readme = (ROOT / "docs" / "emr-runbook.md").read_text()
    defaults = spark_defaults()
    containers = sizing(defaults)
    sizes = (
        "spark.executor.memory",
        "spark.executor.memoryOverhead",
        "spark.driver.memory",
        "spark.driver.memoryOverhead",
    )
    expected_cells = {name: f"{megabytes(defaults[name]):,} MB" for name in sizes}
    node = DEFAULT_NODE
    expected_cells.update(
        {
            "spark.executor.cores": defaults["spark.executor.cores"],
            "executor container": f"{containers['executor']:,} MB",
            "driver container": f"{containers['driver']:,} MB",
            f"YARN memory of an {node.instance_type}": f"{node.yarn_memory_mb:,} MB",
        }
    )
    for name, cell in expected_cells.items():
        # The name in the first cell, not as the start of a longer one (memory, memoryOverhead).
        first_cell = rf"^\| [^|]*{re.escape(name)}(?![\w.])[^|]* \|"
        row = re.search(first_cell + r" ([^|]+) \|", readme, re.M)
        assert row, f"the runbook's memory table has no row for {name}"
        assert row.group(1).strip() == cell, (name, row.group(1))


def test_the_driver_overhead_also_holds_an_int8_run_driver() -> None:
    """--precision int8 quantizes on the driver (NNCF): its peak, from the precision benchmark
    (a first run, the model converted on the driver), must fit the driver's overhead too."""
    results = json.loads((ROOT / "benchmarks" / "results" / "precision.json").read_text())
    jobs = results["precision"]["jobs"]
    int8 = jobs["int8"]["peak_rss_mb"]
    # NNCF is in there: above the f32 run of the same sitting.
    assert int8["driver_python"] > jobs["f32"]["peak_rss_mb"]["driver_python"]
    assert problems(spark_defaults(), DEFAULT_NODE, {**measured_rss_mb(), **int8}) == []

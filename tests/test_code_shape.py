"""The shape of the code itself: short functions, and Spark's JVM internals in one module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SOURCE = Path(__file__).resolve().parents[1] / "src" / "fruits_pipeline"
MAX_FUNCTION_LINES = 60
# py4j and PySpark's private handles on the JVM.
JVM_INTERNALS = re.compile(
    r"\b(_jvm|_jsc|_jdf|_jsparkSession|_gateway|py4j|_py2java|_java_obj|_transfer_params_from_java)\b"
)


def function_lengths() -> dict[str, int]:
    """``{"module.py:function": lines}`` for every function and method in the package."""
    lengths = {}
    for path in sorted(SOURCE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lengths[f"{path.name}:{node.name}"] = node.end_lineno - node.lineno + 1
    return lengths


def test_no_function_is_longer_than_60_lines() -> None:
    lengths = function_lengths()
    assert lengths, "no function found: wrong folder"
    too_long = {name: n for name, n in lengths.items() if n > MAX_FUNCTION_LINES}
    assert not too_long


def test_only_jvm_py_uses_spark_internals() -> None:
    users = sorted(
        path.name
        for path in SOURCE.glob("*.py")
        if JVM_INTERNALS.search(path.read_text()) and path.name != "jvm.py"
    )
    assert users == []
    assert JVM_INTERNALS.search((SOURCE / "jvm.py").read_text())

"""Issue 2, must-show 6, and argument handling: --help both ways, typed config, bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fruits_pipeline.cli import build_parser, parse_job_args, to_uri
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

OPTIONS = [
    "--input", "--output", "--variance", "--k", "--weights", "--batch-size", "--image-size",
    "--master", "--overwrite", "--allowed-regions", "--max-error-fraction", "--no-probe",
]  # fmt: skip


def bin_dir() -> Path:
    return Path(sys.executable).parent


def test_console_script_help_documents_every_option_and_exit_code() -> None:
    completed = subprocess.run(
        [str(bin_dir() / "fruits-pipeline"), "--help"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    for option in OPTIONS:
        assert option in completed.stdout
    assert "exit codes:" in completed.stdout and "residency" in completed.stdout


@pytest.mark.spark  # spark-submit starts a JVM
def test_spark_submit_entrypoint_help() -> None:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    completed = subprocess.run(
        [str(bin_dir() / "spark-submit"), "src/fruits_pipeline/main.py", "--help"],
        cwd=ROOT, capture_output=True, text=True, check=False, env=env, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "usage: fruits-pipeline" in completed.stdout
    assert "--variance" in completed.stdout


def test_arguments_build_a_typed_config() -> None:
    config = parse_job_args(
        ["--input", "s3://b/in/", "--output", "out dir", "--k", "7", "--variance", "0.9",
         "--allowed-regions", "eu-west-1, eu-central-1"]
    )  # fmt: skip
    assert config.input_uri == "s3://b/in/"
    assert config.output_uri == "file:" + os.path.abspath("out dir")
    assert (config.k, config.variance) == (7, 0.9)
    assert config.allowed_regions == ("eu-west-1", "eu-central-1")
    assert config.weights == "imagenet" and config.image_size == 224


@pytest.mark.parametrize(
    "bad",
    [["--variance", "0"], ["--variance", "1.5"], ["--k", "0"], ["--k", "1281"],
     ["--max-error-fraction", "-0.1"], ["--image-size", "8"]],
)  # fmt: skip
def test_bad_values_exit_2(bad: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--input", "a", "--output", "b", *bad])
    assert stopped.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_to_uri_keeps_schemes_and_absolutises_paths() -> None:
    assert to_uri("s3://bucket/x") == "s3://bucket/x"
    assert to_uri("file:///tmp/x") == "file:///tmp/x"
    assert to_uri("rel/Apple Red 1") == "file:" + os.path.abspath("rel/Apple Red 1")


def test_engine_defaults_to_openvino_and_threads_keep_their_former_name() -> None:
    config = parse_job_args(["--input", "in", "--output", "out"])
    assert (config.engine, config.model_threads) == ("openvino", 1)
    config = parse_job_args(
        ["--input", "in", "--output", "out", "--engine", "tensorflow", "--tf-threads", "2"]
    )
    assert (config.engine, config.model_threads) == ("tensorflow", 2)
    with pytest.raises(SystemExit):
        parse_job_args(["--input", "in", "--output", "out", "--engine", "onnx"])

"""The command line: subcommands built from the config's fields, --help, typed configs, bad
values, exit codes."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import fruits_pipeline.job
from fruits_pipeline.cli import COMMANDS, add_options, build_parser, main, parse_job_args
from fruits_pipeline.config import RUN, JobConfig, option, options_of, to_uri
from fruits_pipeline.errors import EXIT_CODE_HELP, ExitCode
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

RUN_OPTIONS = [
    "--input",
    "--output",
    "--variance",
    "--k",
    "--weights",
    "--batch-size",
    "--image-size",
    "--master",
    "--overwrite",
    "--allowed-regions",
    "--max-error-fraction",
    "--no-probe",
    "--incremental-from",
    "--engine",
    "--model-threads",
    "--arrow-batch-size",
    "--seed",
]


def bin_dir() -> Path:
    return Path(sys.executable).parent


def console(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir() / "fruits-pipeline"), *args], capture_output=True, text=True, check=False
    )


def test_top_level_help_lists_the_commands_and_exit_codes() -> None:
    completed = console("--help")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: fruits-pipeline [-h] [--version] COMMAND")
    for command in ("run", "project", "report"):
        assert f"\n    {command} " in completed.stdout
    assert "exit codes:" in completed.stdout and "residency" in completed.stdout


def test_run_help_documents_every_option_its_outputs_and_exit_codes() -> None:
    completed = console("run", "--help")
    assert completed.returncode == 0, completed.stderr
    for option_name in RUN_OPTIONS:
        assert option_name in completed.stdout
    assert "--model " not in completed.stdout
    assert "inventory/" in completed.stdout and "examples:" in completed.stdout
    assert "exit codes:" in completed.stdout and "(default: 0.95)" in completed.stdout


def test_project_help_has_model_and_no_reduction_options() -> None:
    completed = console("project", "--help")
    assert completed.returncode == 0, completed.stderr
    assert "--model RUN" in completed.stdout and "no model/" in completed.stdout
    for absent in ("--variance VARIANCE", "--k K", "--incremental-from PREVIOUS_RUN"):
        assert absent not in completed.stdout


def test_arguments_build_a_typed_config() -> None:
    config = parse_job_args(
        [
            "run",
            "--input",
            "s3://b/in/",
            "--output",
            "out dir",
            "--k",
            "7",
            "--variance",
            "0.9",
            "--allowed-regions",
            "eu-west-1, eu-central-1",
            "--no-probe",
        ]
    )
    assert config.input_uri == "s3://b/in/"
    assert config.output_uri == "file:" + os.path.abspath("out dir")
    assert (config.k, config.variance, config.probe) == (7, 0.9, False)
    assert config.allowed_regions == ("eu-west-1", "eu-central-1")
    assert config.weights == "imagenet" and config.image_size == 224
    assert config.model_run is None and config.incremental_from is None


def test_every_default_is_the_configs() -> None:
    parsed = parse_job_args(["run", "--input", "in", "--output", "out"])
    assert parsed == JobConfig(input_uri=to_uri("in"), output_uri=to_uri("out"))


def test_project_sets_the_model_run_and_keeps_the_reduction_defaults() -> None:
    config = parse_job_args(["project", "--model", "runs/a", "--input", "in", "--output", "o"])
    assert config.model_run == "file:" + os.path.abspath("runs/a")
    assert (config.variance, config.k, config.incremental_from) == (0.95, None, None)


@pytest.mark.parametrize(
    "bad",
    [
        ["run", "--variance", "0"],
        ["run", "--variance", "1.5"],
        ["run", "--k", "0"],
        ["run", "--k", "1281"],
        ["run", "--max-error-fraction", "-0.1"],
        ["run", "--image-size", "8"],
        ["project", "--k", "3"],
        ["project"],
    ],
)
def test_bad_values_exit_2(bad: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([*bad, "--input", "a", "--output", "b"])
    assert stopped.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_options_without_a_command_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--input", "a", "--output", "b"])
    assert stopped.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_to_uri_keeps_schemes_and_absolutises_paths() -> None:
    assert to_uri("s3://bucket/x") == "s3://bucket/x"
    assert to_uri("file:///tmp/x") == "file:///tmp/x"
    assert to_uri("rel/Apple Red 1") == "file:" + os.path.abspath("rel/Apple Red 1")


def test_engine_defaults_to_openvino_and_threads_keep_their_former_name() -> None:
    config = parse_job_args(["run", "--input", "in", "--output", "out"])
    assert (config.engine, config.model_threads) == ("openvino", 1)
    config = parse_job_args(
        ["run", "--input", "in", "--output", "out", "--engine", "tensorflow", "--tf-threads", "2"]
    )
    assert (config.engine, config.model_threads) == ("tensorflow", 2)
    with pytest.raises(SystemExit):
        parse_job_args(["run", "--input", "in", "--output", "out", "--engine", "onnx"])


@pytest.mark.parametrize(
    ("extra", "batch"),
    [
        ([], 1),
        (["--precision", "int8"], 8),
        (["--engine", "tensorflow"], 8),
        (["--batch-size", "16"], 16),
        (["--precision", "int8", "--batch-size", "2"], 2),
    ],
)
def test_the_batch_size_defaults_to_the_fastest_for_the_engine_and_precision(
    extra: list[str], batch: int
) -> None:
    config = parse_job_args(["run", "--input", "in", "--output", "out", *extra])
    assert config.batch_size == batch


def test_an_option_is_one_field() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Extended:
        name: str = option("--name", default="x", group="model", help="a name")
        count: int = option("--count", default=3, group="spark", parse=int, help="how many")

    parser = argparse.ArgumentParser()
    add_options(parser, Extended, RUN)
    args = parser.parse_args(["--count", "5"])
    assert (args.name, args.count) == ("x", 5)
    assert "how many (default: 3)" in " ".join(parser.format_help().split())


def test_every_option_of_a_command_has_a_unique_flag_and_help() -> None:
    for name, command in COMMANDS.items():
        flags = [flag for _, opt in options_of(command.config, name) for flag in opt.flags]
        assert len(flags) == len(set(flags)), name
        assert all(opt.help for _, opt in options_of(command.config, name))


def test_an_unexpected_failure_exits_1_with_a_message(monkeypatch, tmp_path, capsys) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fruits_pipeline.job, "run_job", broken)
    code = main(["run", "--input", str(tmp_path), "--output", str(tmp_path / "out")])
    assert code == ExitCode.FAILURE
    err = capsys.readouterr().err
    assert "RuntimeError: boom" in err and "the run failed unexpectedly" in err


def test_the_readme_and_the_help_list_every_exit_code_in_order() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    in_readme = [int(code) for code in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)]
    in_help = [int(code) for code in re.findall(r"^  (\d+)  ", EXIT_CODE_HELP, re.MULTILINE)]
    assert in_readme == in_help == [int(code) for code in ExitCode]

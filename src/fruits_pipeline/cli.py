"""The command line: ``fruits-pipeline run|project|report [options]``.

Each subcommand's options come from the fields of its config dataclass (``config.JobConfig``,
``config.ReportConfig``), where each field carries its flag and help text; this module only
adds the words around them (descriptions, examples, exit codes) and runs the command. Every
exit goes through ``ExitCode``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, dataclass
from typing import TYPE_CHECKING, Any

from fruits_pipeline import __version__
from fruits_pipeline.config import (
    GROUPS,
    PROJECT,
    REPORT,
    RUN,
    JobConfig,
    Option,
    ReportConfig,
    options_of,
)
from fruits_pipeline.errors import EXIT_CODE_HELP, ExitCode, PipelineError
from fruits_pipeline.progress import Progress
from fruits_pipeline.summary import summary_lines

if TYPE_CHECKING:
    from fruits_pipeline.engines import ModelSource

PROG = "fruits-pipeline"

DESCRIPTION = """\
Turn a folder (or S3 prefix) of fruit photos into features a classifier can learn from:
MobileNetV2 features (1280-d), standardised and reduced by PCA, written as Parquet.
"fruits-pipeline COMMAND --help" lists a command's options, outputs and examples."""

RUN_DESCRIPTION = """\
Every *.jpg / *.jpeg below --input is labelled by its parent folder, featurized with
MobileNetV2 (1280-d, ImageNet weights broadcast from the driver), standardised and reduced by
PCA to the smallest k that keeps --variance of the variance, and written as Parquet. A linear
probe (logistic regression on the Training split, scored on Test) checks the features.

outputs under --output:
  features/      path, label, split, features (array<float>[1280])
  errors/        path, label, split, error_kind, error_message: images that could not be used
  pca/           path, label, split, pca_features (array<float>[k])
  model/         the fitted StandardScaler + PCA (pyspark.ml.PipelineModel.load)
  inventory/     path, length, modificationTime of every file: what --incremental-from compares
  manifest.json  counts per label, k and the variance curve, probe accuracy, timings, weights
                 sha256, versions;
                 written last, "status": "succeeded" only when everything else was written"""

RUN_EXAMPLES = """examples:
  fruits-pipeline run --input sample/fruits-360 --output runs/sample \\
      --weights models/mobilenet_v2_1.0_224_no_top_imagenet_from_tflite.weights.h5
  spark-submit --py-files fruits_pipeline.zip main.py run \\
      --input s3://my-eu-bucket/fruits-360/ --output s3://my-eu-bucket/runs/2026-11-21/"""

PROJECT_DESCRIPTION = """\
Project new photos with a finished run's reduction, no refit: every *.jpg / *.jpeg below
--input is labelled by its parent folder, featurized with the weights RUN used (checked by
sha256, else exit 7), and projected with RUN's fitted StandardScaler + PCA (RUN/model).

outputs under --output: features/, errors/, pca/ (k of RUN), inventory/ and manifest.json
(which names RUN, its k and the weights' sha256); no model/ (it is RUN's)."""

PROJECT_EXAMPLES = """examples:
  fruits-pipeline project --model s3://my-eu-bucket/runs/2026-11-21/ \\
      --input s3://my-eu-bucket/uploads/2026-11-22/ --output s3://my-eu-bucket/scored/2026-11-22/ \\
      --weights s3://my-eu-bucket/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"""

REPORT_DESCRIPTION = """\
Write report.html (self-contained: opens offline) and its PNGs for a finished run: the
explained variance with k marked, the first two components (hover a point for its class and
path, search a class to highlight it), the probe's classifiers, worst-recalled classes, most
confused pairs and confusion heat map, images per class and errors by kind and class.
--compare puts another run's figures beside it. Needs the [report] extra (matplotlib)."""

REPORT_EXAMPLES = """examples:
  fruits-pipeline report runs/sample
  fruits-pipeline report s3://my-eu-bucket/runs/2026-11-21/ --out report-2026-11-21
  fruits-pipeline report runs/sample-mobilenet --compare runs/sample-orb

exit codes: 0 written, 1 matplotlib missing, 3 no manifest.json in RUN"""


def run_command(config: JobConfig, model: ModelSource | None = None) -> int:
    """Run the job (``run`` or ``project``); print the summary; return the exit code.

    ``model``: the job's model (default ``engines.MOBILENET_V2``); tests pass a fake one to run
    the command line's whole path, exit codes included, without the real model.
    """
    # Spark and the model load only for a real run, not for --help.
    from fruits_pipeline.engines import MOBILENET_V2
    from fruits_pipeline.job import run_job
    from fruits_pipeline.session import RunSession

    session = RunSession(config)
    try:
        manifest = run_job(config, Progress(), session, model=model or MOBILENET_V2)
    except PipelineError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return int(error.exit_code)
    except Exception:
        traceback.print_exc()
        print(f"{PROG}: error: the run failed unexpectedly (see above)", file=sys.stderr)
        return int(ExitCode.FAILURE)
    finally:
        session.close()
    print("\n".join(summary_lines(manifest)), flush=True)
    return int(ExitCode.OK)


def report_command(config: ReportConfig) -> int:
    from fruits_pipeline.report import main as report_main  # matplotlib only when asked for

    return report_main(config)


@dataclass(frozen=True)
class Command:
    """A subcommand: its config dataclass (whose fields give its options), what it runs, and
    the words of its ``--help``."""

    config: type
    handler: Callable[[Any], int]
    summary: str
    description: str
    epilog: str


COMMANDS = {
    RUN: Command(
        JobConfig,
        run_command,
        "featurize, fit scaler + PCA, write a run",
        RUN_DESCRIPTION,
        RUN_EXAMPLES + "\n\n" + EXIT_CODE_HELP,
    ),
    PROJECT: Command(
        JobConfig,
        run_command,
        "project new images with a finished run's scaler + PCA",
        PROJECT_DESCRIPTION,
        PROJECT_EXAMPLES + "\n\n" + EXIT_CODE_HELP,
    ),
    REPORT: Command(
        ReportConfig,
        report_command,
        "write report.html for a finished run",
        REPORT_DESCRIPTION,
        REPORT_EXAMPLES,
    ),
}


def help_text(item: Field[Any], option: Option) -> str:
    """``option.help``, with the field's default when it is a value worth showing."""
    text = option.help
    default = item.default
    if default is not MISSING and default is not None and not isinstance(default, bool):
        shown = ",".join(default) if isinstance(default, tuple) else default
        text += f" (default: {shown})"
    return text.replace("%", "%%")  # argparse formats help with %


def argument_settings(item: Field[Any], option: Option, command: str) -> dict[str, Any]:
    """``add_argument``'s keywords for ``option`` of field ``item`` in ``command``."""
    settings: dict[str, Any] = {"help": help_text(item, option)}
    if option.flags[0].startswith("-"):
        settings.update(dest=item.name, required=command in option.required)
    if item.default is not MISSING:
        settings["default"] = item.default
    if option.switch is not None:
        settings["action"] = "store_true" if option.switch else "store_false"
    else:
        # Named after the flag (--input INPUT), not the field (input_uri).
        named = option.flags[0].lstrip("-").upper().replace("-", "_")
        metavar = option.metavar or (None if option.choices else named)
        settings.update(type=option.parse, choices=option.choices, metavar=metavar)
    return settings


def add_options(parser: argparse.ArgumentParser, config: type, command: str) -> None:
    """Add every option of ``config``'s fields that ``command`` takes, in their sections."""
    sections = {name: parser.add_argument_group(name) for name in GROUPS}  # empty ones are hidden
    for item, option in options_of(config, command):
        sections[option.group].add_argument(
            *option.flags, **argument_settings(item, option, command)
        )


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand (``COMMANDS``), each with its own ``--help``."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EXIT_CODE_HELP, formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    for name, command in COMMANDS.items():
        subparser = commands.add_parser(
            name,
            help=command.summary,
            description=command.description,
            epilog=command.epilog,
            formatter_class=formatter,
        )
        add_options(subparser, command.config, name)
    return parser


def parse_args(argv: Sequence[str]) -> tuple[str, Any]:
    """``(command, config)`` for ``argv`` (argparse exits 2 on bad arguments)."""
    args = build_parser().parse_args(argv)
    config_type = COMMANDS[args.command].config
    values = {
        item.name: getattr(args, item.name) for item, _ in options_of(config_type, args.command)
    }
    return args.command, config_type(**values)


def parse_job_args(argv: Sequence[str]) -> JobConfig:
    """The ``JobConfig`` of a ``run`` or ``project`` command line (``argv`` names the command)."""
    command, config = parse_args(argv)
    if not isinstance(config, JobConfig):
        raise ValueError(f"{command} is not a job command")
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry: parse the subcommand and its options, run it, return the exit
    code."""
    command, config = parse_args(sys.argv[1:] if argv is None else argv)
    return COMMANDS[command].handler(config)

"""The job's failure types and the process exit code each one maps to.

Every way the job can stop on purpose is a subclass of :class:`PipelineError` carrying its own
exit code, so the CLI turns an exception into a documented code and CI can act on the number
alone. The codes are listed in the README and in ``fruits-pipeline --help``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of ``fruits-pipeline`` (stable: scripts and CI depend on them)."""

    OK = 0
    FAILURE = 1  # no JVM, or anything unexpected: a bug, a lost executor, a storage error
    USAGE = 2  # bad arguments (argparse uses 2 as well)
    NO_INPUT = 3  # no file matches the image glob, or --incremental-from cannot be reused
    TOO_MANY_BAD_IMAGES = 4  # errors/ and the manifest are written, then the run fails
    RESIDENCY = 5  # a bucket or region outside the allowed EU regions
    OUTPUT_EXISTS = 6  # the output already holds a run and --overwrite was not given
    BAD_WEIGHTS = 7  # the weights are missing, not the expected file, not HDF5, or do not fit
    QUALITY_GATE = 8  # --precision int8: the quantized model failed the quality gate
    TABLE_MISMATCH = 9  # --table holds features of another weights file, engine, precision...


EXIT_CODE_HELP = """exit codes:
  0  success
  1  Spark's JVM did not start (Java 17 is needed), or an unexpected failure (the
     manifest, if written, says "status": "failed")
  2  bad arguments
  3  no input: nothing matches *.jpg / *.jpeg under --input, or --incremental-from
     cannot be reused (not succeeded, other weights, image size or engine)
  4  too many bad images (above --max-error-fraction); errors/ and manifest.json are written
  5  residency refused: a bucket or region outside --allowed-regions (EU only)
  6  the output already holds a run and --overwrite was not given
  7  the weights cannot be loaded into MobileNetV2, or differ from --weights-sha256
  8  --precision int8 refused by the quality gate (int8 features too far from f32 on a
     sample of the input); nothing is written: run with --precision f32
  9  --table holds features made with other weights, engine, precision, extractor or
     image size; nothing is committed"""


class PipelineError(Exception):
    """A failure the job reports with a clear message and a specific exit code."""

    exit_code: ExitCode = ExitCode.FAILURE


class UsageError(PipelineError):
    exit_code = ExitCode.USAGE


class NoInputError(PipelineError):
    exit_code = ExitCode.NO_INPUT


class TooManyBadImagesError(PipelineError):
    exit_code = ExitCode.TOO_MANY_BAD_IMAGES


class ResidencyError(PipelineError):
    exit_code = ExitCode.RESIDENCY


class OutputExistsError(PipelineError):
    exit_code = ExitCode.OUTPUT_EXISTS


class WeightsError(PipelineError):
    exit_code = ExitCode.BAD_WEIGHTS


class QualityGateError(PipelineError):
    exit_code = ExitCode.QUALITY_GATE


class TableMismatchError(PipelineError):
    exit_code = ExitCode.TABLE_MISMATCH

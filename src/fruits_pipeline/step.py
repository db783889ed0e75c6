"""The EMR step: the one place that builds its code package and its ``spark-submit`` command.

``scripts/submit_step.sh`` runs ``python -m fruits_pipeline.step`` to package the code and write
the step for ``aws emr add-steps``; the end-to-end test runs the step that EMR received, through
``local_command``, on a local Spark with separate executor processes. Whatever shape the step
takes here is what both run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from fruits_pipeline.config import JOB_COMMANDS

PACKAGE = "fruits_pipeline"
PACKAGE_ZIP = "fruits_pipeline.zip"
ENTRYPOINT = "main.py"
STEPS_FILE = "steps.json"
# In cluster mode the driver is YARN's application master, which YARN restarts after a failure
# by default. A second attempt would find the first one's outputs and stop with "already holds
# a run" (exit 6), hiding the real error, or redo the whole model pass: one attempt, one verdict.
STEP_CONF = {"spark.yarn.maxAppAttempts": "1"}


def conf_options(settings: Mapping[str, str]) -> list[str]:
    """``settings`` as ``spark-submit`` options: ``["--conf", "key=value", ...]``."""
    options: list[str] = []
    for key, value in settings.items():
        options += ["--conf", f"{key}={value}"]
    return options


def spark_submit_args(code_prefix: str, job_args: Sequence[str]) -> list[str]:
    """The step's command line: ``spark-submit [options] CODE/main.py JOB_ARGS``.

    Args:
        code_prefix: where the package was uploaded, e.g. ``s3://bucket/code/0.1.0-abc1234``.
        job_args: the job's command line (``run --input s3://… --output s3://…``), passed
            unchanged.

    Returns:
        ``["spark-submit", "--deploy-mode", "cluster", "--conf", …, "--py-files",
        "CODE/fruits_pipeline.zip", "CODE/main.py", *job_args]`` (``job_args`` start with the
        subcommand, ``run`` or ``project``).
    """
    prefix = code_prefix.rstrip("/")
    return [
        "spark-submit",
        "--deploy-mode",
        "cluster",
        *conf_options(STEP_CONF),
        "--py-files",
        f"{prefix}/{PACKAGE_ZIP}",
        f"{prefix}/{ENTRYPOINT}",
        *job_args,
    ]


def emr_step(name: str, code_prefix: str, job_args: Sequence[str]) -> dict[str, object]:
    """The step for ``aws emr add-steps --steps file://…``: a ``Spark`` step (EMR runs it as
    ``command-runner.jar spark-submit …``) that leaves the cluster running if it fails."""
    return {
        "Type": "Spark",
        "Name": name,
        "ActionOnFailure": "CONTINUE",
        "Args": spark_submit_args(code_prefix, job_args)[1:],  # the CLI adds "spark-submit"
    }


def local_command(
    step_args: Sequence[str], spark_submit: str, master: str, conf: Mapping[str, str]
) -> list[str]:
    """The same step run by a local Spark: ``step_args`` with ``master`` and ``conf`` added.

    Args:
        step_args: a step's command as ``spark_submit_args`` builds it (or as EMR reports it).
        spark_submit: the ``spark-submit`` executable to run it with.
        master: e.g. ``local-cluster[2,1,2048]`` (two executor JVMs with their own Python
            workers: the closest to YARN one machine offers).
        conf: extra ``--conf`` settings, e.g. ``s3a.s3a_settings(...)``.

    Pitfall: Spark runs Python applications in cluster deploy mode only on YARN and
    Kubernetes, so the deploy mode becomes ``client``; every other argument is kept as is.
    """
    if not step_args or step_args[0] != "spark-submit":
        raise ValueError(f"not a spark-submit command: {list(step_args)[:3]}")
    args = list(step_args[1:])
    if "--deploy-mode" in args:
        args[args.index("--deploy-mode") + 1] = "client"
    return [spark_submit, "--master", master, *conf_options(conf), *args]


def build_package(out_dir: Path, source: Path | None = None) -> tuple[Path, Path]:
    """Write ``fruits_pipeline.zip`` (every ``.py`` of the package, no caches) and a copy of
    ``main.py`` into ``out_dir``; return their paths. ``source`` defaults to this package."""
    package = source or Path(__file__).resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    archive_path = out_dir / PACKAGE_ZIP
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package.rglob("*.py")):
            archive.write(path, (Path(PACKAGE) / path.relative_to(package)).as_posix())
    entrypoint = out_dir / ENTRYPOINT
    shutil.copyfile(package / ENTRYPOINT, entrypoint)
    return archive_path, entrypoint


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fruits_pipeline.step --code-prefix P --name N --out DIR -- COMMAND ARGS``.

    Writes ``DIR/fruits_pipeline.zip``, ``DIR/main.py`` (to upload to P) and ``DIR/steps.json``
    (for ``aws emr add-steps --steps file://DIR/steps.json``). Exit 0, or 2 on bad arguments.
    """
    parser = argparse.ArgumentParser(
        prog="python -m fruits_pipeline.step",
        description="Package the job and write its EMR step (used by scripts/submit_step.sh).",
    )
    parser.add_argument("--code-prefix", required=True, help="s3:// prefix the code goes to")
    parser.add_argument("--name", required=True, help="the step's name")
    parser.add_argument("--out", required=True, type=Path, help="folder for the three files")
    parser.add_argument(
        "job_args", nargs=argparse.REMAINDER, help="-- then the job's command and its options"
    )
    args = parser.parse_args(argv)
    job_args = args.job_args[1:] if args.job_args[:1] == ["--"] else args.job_args
    if not job_args:
        parser.error("no job arguments: pass them after --")
    if job_args[0] not in JOB_COMMANDS:
        parser.error(f"the job arguments start with its command ({' or '.join(JOB_COMMANDS)})")
    build_package(args.out)
    steps = [emr_step(args.name, args.code_prefix, job_args)]
    (args.out / STEPS_FILE).write_text(json.dumps(steps, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

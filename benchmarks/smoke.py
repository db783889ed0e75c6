"""Every benchmark in its smoke mode, in one process that shares their job runs (CI runs it).

A smoke run checks that each benchmark still runs end to end and prints its table; its timings
mean nothing. Run one after another here, the benchmarks share one set of job runs: a full run
(no table, nothing read from its output) asked for again on the same files with the same options
is made once (``throughput.SharedRuns``). The sizes are chosen so that it happens: the
throughput benchmark's default-engine run on 48 photos is the incremental benchmark's full run
C (44 photos, then 4 new) and the table benchmark's full run at size 40 (then 8 new).
``probe_share`` is not among them: it reads a finished run's ``pca/``, which these runs do not
keep; tests/e2e/test_sample_run.py runs it on the sample run.

    .venv/bin/python -m benchmarks.smoke --out /tmp/smoke

Writes each benchmark's printed output to ``OUT/<name>.txt`` (also echoed) and its figures to
``OUT/<name>.json`` where the benchmark writes figures. Exit status 0 when every benchmark ran,
1 when one failed (its traceback printed; the others still run).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks import accounting, incremental, throughput

# (name, the benchmark's main, its smoke arguments; "{out}" is the output folder)
SMOKE_RUNS: list[tuple[str, Callable[[list[str]], int], list[str]]] = [
    ("throughput", throughput.main, ["--smoke", "--json", "{out}/throughput.json"]),
    (
        "precision",
        throughput.main,
        ["--precision", "--smoke", "--json", "{out}/precision.json"],
    ),
    (
        "incremental",
        incremental.main,
        ["--n", "44", "--new-share", "0.1", "--repeats", "1", "--quiet-wait", "0", "--no-save"],
    ),
    (
        "incremental_table",
        incremental.main,
        ["--table", "--sizes", "40,80", "--new", "8", "--quiet-wait", "0", "--no-save"],
    ),
    ("accounting", accounting.main, ["--sizes", "2000", "--no-save"]),
]


class Tee(io.TextIOBase):
    """Writes to every stream it holds: the benchmark's file and the console."""

    def __init__(self, *streams: io.TextIOBase) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)


def run_all(out: Path) -> int:
    """Each of ``SMOKE_RUNS`` in turn, sharing full job runs; how many failed."""
    shared = throughput.SHARED_RUNS = throughput.SharedRuns()
    failed = 0
    for name, main, arguments in SMOKE_RUNS:
        start = time.perf_counter()
        print(f"== {name} ==", flush=True)
        with (out / f"{name}.txt").open("w") as printed:
            try:
                with contextlib.redirect_stdout(Tee(printed, sys.stdout)):  # type: ignore[type-var]
                    code = main([argument.format(out=out) for argument in arguments])
            except Exception:  # one benchmark's failure must not hide the others' results
                traceback.print_exc()
                code = 1
        failed += code != 0
        print(f"== {name}: exit {code}, {time.perf_counter() - start:.0f} s ==", flush=True)
    print(
        f"shared job runs: {len(shared.runs)} made, {shared.reused} asked for again and reused",
        flush=True,
    )
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for outputs and figures")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    return 1 if run_all(args.out) else 0


if __name__ == "__main__":
    sys.exit(main())

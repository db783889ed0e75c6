"""Incremental runs against full runs: the time after start-up, in one sitting.

A folder of N real photos (the shared sample, replicated; default N = 8,000) gets a full run
(A); 10 % new photos are added; then, side by side, an incremental run from A (B) and a full run
on the same final folder (C), in turn ``--repeats`` times. Target: B takes at most 0.5x C's
time after start-up (``manifest.throughput.job_seconds_after_startup``: featurize to manifest),
the ratio of their sums. Printed beside it: the same with the listing stage (where B finds its
new files), and the whole processes. B's stage timings name the costs an incremental run keeps
paying whatever the number of new photos.

    .venv/bin/python -m benchmarks.incremental                 # N = 8,000 (about 9 minutes here)
    .venv/bin/python -m benchmarks.incremental --n 44 --repeats 1   # a quick check (smoke.py)

Writes ``benchmarks/results/incremental.json`` unless ``--no-save``.

``--table``: the same question for a collection (``run --table``), at several sizes. For each
size N (``--sizes``), a folder of N photos gets a first run with ``--table`` on an empty table
(a full run through the table); ``--new`` photos are added; then the same command again (the
incremental run: the model on the new photos only) and a plain full run (no table) on the same
final folder. Target: the incremental run on the largest collection takes at most 1.3x the one
on the smallest, after start-up (an incremental run from a run folder grows with the
collection); each is also set against its full run. The incremental runs of every size follow
each other, then the full runs, so the machine's drift falls between sizes as little as it can.

    .venv/bin/python -m benchmarks.incremental --table --sizes 8000,32000 --new 800
    .venv/bin/python -m benchmarks.incremental --table --sizes 40,80 --new 8 --quiet-wait 0 \
        --no-save                                                  # a quick check (smoke.py)

Writes ``benchmarks/results/incremental_table.json`` unless ``--no-save``.
"""

from __future__ import annotations

import argparse
import json
import operator
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, astuple, dataclass
from functools import reduce
from pathlib import Path

from benchmarks.throughput import (
    ROOT,
    SHARED_SAMPLE,
    SHIPPED_SAMPLE,
    load_average,
    machine,
    prepare_images,
    run_job,
    wait_for_quiet,
)
from fruits_pipeline.manifest import Manifest
from fruits_pipeline.stages import Stage

TARGET_RATIO = 0.5
# With --table: the incremental run on the largest collection against the one on the smallest.
TABLE_TARGET = 1.3
# An incremental run also plans its increment in the listing stage.
LIST_STAGE = Stage.LIST.key


def run(images: Path, output: Path, *extra: str, shared: bool = False) -> tuple[Manifest, float]:
    """The job's manifest, and the wall seconds of its whole process (start-up included);
    ``shared`` as ``throughput.run_job`` takes it (a full run whose output nothing reads)."""
    manifest, wall, _ = run_job(images, output, "--no-probe", *extra, shared=shared)
    return manifest, wall


def seconds(manifest: Manifest) -> float:
    assert manifest.throughput is not None
    return manifest.throughput.job_seconds_after_startup


def with_listing(manifest: Manifest) -> float:
    """After start-up plus the listing stage, where an incremental run finds its new files."""
    return seconds(manifest) + manifest.timings_s[LIST_STAGE]


@dataclass(frozen=True)
class Timed:
    """One run's three figures (s): after start-up, with the listing stage, whole process."""

    after_startup: float
    with_listing: float
    process: float

    @staticmethod
    def of(run_result: tuple[Manifest, float]) -> Timed:
        manifest, wall = run_result
        return Timed(seconds(manifest), with_listing(manifest), wall)

    def _each(self, other: Timed, op: Callable[[float, float], float]) -> Timed:
        pairs = zip(astuple(self), astuple(other), strict=True)
        return Timed(*(round(op(a, b), 3) for a, b in pairs))

    def __add__(self, other: Timed) -> Timed:
        return self._each(other, operator.add)

    def ratio(self, other: Timed) -> Timed:
        return self._each(other, operator.truediv)


def hold_back(folder: Path, count: int, held: Path) -> list[Path]:
    """Move the ``count`` newest photos of ``folder`` (``prepare_images`` numbers them, so the
    last by file name) to ``held``, keeping their class folders; return their paths in
    ``folder``, where ``restore`` puts them back. Pitfall: a rename, so ``held`` must be on the
    same file system (a sibling of ``folder``)."""
    photos = sorted(folder.rglob("*.jpg"), key=lambda p: p.name)
    later = photos[len(photos) - count :]
    for photo in later:
        (held / photo.parent.name).mkdir(parents=True, exist_ok=True)
        photo.rename(held / photo.parent.name / photo.name)
    return later


def restore(later: list[Path], held: Path) -> None:
    """Put back the photos ``hold_back`` moved to ``held``: the new photos arrive."""
    for photo in later:
        (held / photo.parent.name / photo.name).rename(photo)


# B's manifest and timings, then C's: one pair of the --incremental-from benchmark.
Pair = tuple[Manifest, Timed, Manifest, Timed]


def from_run_mode(args: argparse.Namespace, source: Path) -> dict:
    """The ``--incremental-from`` benchmark (A, then B and C ``--repeats`` times): runs, prints
    and returns its figures."""
    new = round(args.n * args.new_share)
    pairs: list[Pair] = []
    with tempfile.TemporaryDirectory(prefix="fruits-incremental-") as scratch:
        work = Path(scratch)
        folder = prepare_images(source, args.n + new, work / "in")
        later = hold_back(folder, new, work / "later")  # they wait for the second run
        waited = wait_for_quiet(args.quiet_wait)
        load_start = load_average()
        first, _ = run(folder, work / "A")
        restore(later, work / "later")
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        for _ in range(args.repeats):
            incremental = run(folder, work / "B", "--incremental-from", str(work / "A"))
            full = run(folder, work / "C", shared=True)
            pairs.append((incremental[0], Timed.of(incremental), full[0], Timed.of(full)))
        load = {"start": load_start, "end": load_average(), "waited_s": waited}
    figures = from_run_figures(args, new, first, pairs)
    figures = {"started": started, **figures, "load_average": load}
    print_from_run(args, figures, first, pairs)
    return figures


def from_run_figures(
    args: argparse.Namespace, new: int, first: Manifest, pairs: list[Pair]
) -> dict:
    """The figures of ``from_run_mode``: the ratios are of B's and C's sums over the pairs."""
    b_total = reduce(operator.add, (pair[1] for pair in pairs))
    c_total = reduce(operator.add, (pair[3] for pair in pairs))
    ratios = b_total.ratio(c_total)
    last_b = pairs[-1][0]
    assert last_b.counts
    return {
        "machine": machine(),
        "n_first": args.n,
        "new": new,
        "first_full_s": seconds(first),
        "repeats": args.repeats,
        "incremental_s": [asdict(pair[1]) for pair in pairs],
        "full_s": [asdict(pair[3]) for pair in pairs],
        "ratio": ratios.after_startup,
        "target": TARGET_RATIO,
        "met": ratios.after_startup <= TARGET_RATIO,
        "ratio_with_listing": ratios.with_listing,
        "ratio_process": ratios.process,
        "incremental_counts": {
            "model_runs": last_b.counts.model_runs,
            "reused": last_b.counts.reused,
            "featurized_new": last_b.counts.featurized_new,
        },
        "incremental_timings_s": [pair[0].timings_s for pair in pairs],
        "full_timings_s": [pair[2].timings_s for pair in pairs],
    }


def print_from_run(
    args: argparse.Namespace, figures: dict, first: Manifest, pairs: list[Pair]
) -> None:
    """Print ``from_run_figures`` (with ``load_average``): A, each B and C, the ratios against
    the target, and the last pair's stages."""
    last_b, _, last_c, _ = pairs[-1]
    assert last_b.counts and last_c.counts
    new = figures["new"]
    print(f"machine: {figures['machine']}")
    print(f"first full run on {args.n:,} photos: {seconds(first):.1f} s after start-up")
    print(
        f"then {new:,} new photos ({args.new_share:.0%}), {args.n + new:,} in all; "
        f"B: incremental, the model ran on {last_b.counts.model_runs:,} photos, "
        f"{last_b.counts.reused:,} reused; C: full, the model ran on "
        f"{last_c.counts.model_runs:,} photos"
    )
    print("  seconds:     after start-up | with the listing stage | whole process")
    for index, (_, b, _, c) in enumerate(pairs, 1):
        for name, timed in (("B", b), ("C", c)):
            print(
                f"  {name}{index}:  {timed.after_startup:14.1f} | {timed.with_listing:22.1f} | "
                f"{timed.process:13.1f}"
            )
    print(
        f"  B / C = {figures['ratio']:.2f}x after start-up (target <= {TARGET_RATIO}x): "
        f"{'met' if figures['met'] else 'NOT met'}; {figures['ratio_with_listing']:.2f}x with "
        f"the listing stage (B plans its increment there); {figures['ratio_process']:.2f}x "
        "whole processes"
    )
    for name, manifest in (("B", last_b), ("C", last_c)):
        print(f"  {name}{len(pairs)}'s stages (s): {stages(manifest.timings_s)}")
    load = figures["load_average"]
    print(f"load average: start {load['start']}, end {load['end']} (waited {load['waited_s']} s)")


def stages(timings: dict[str, float]) -> str:
    """A run's stage timings (``manifest.timings_s``) on one line: ``list 1.2, ...``."""
    return ", ".join(f"{key} {value:.1f}" for key, value in timings.items())


@dataclass(frozen=True)
class TableSize:
    """The ``--table`` benchmark at one collection size: the first run (on an empty table), the
    incremental run (the same command after the new photos) and the plain full run (no table,
    the same final folder), each a manifest and its process's wall seconds."""

    size: int
    first: tuple[Manifest, float]
    incremental: tuple[Manifest, float]
    full: tuple[Manifest, float]


def table_mode(args: argparse.Namespace, source: Path) -> dict:
    """The ``--table`` benchmark: runs, prints and returns its figures.

    Every folder is built before the clock starts; then the first runs of every size, the new
    photos, the incremental runs back to back (the ratio's two runs as close in time as they
    can be), then the full runs.
    """
    sizes = sorted(int(size) for size in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="fruits-incremental-table-") as scratch:
        work = Path(scratch)
        later = {}
        for size in sizes:
            folder = prepare_images(source, size + args.new, work / f"in-{size}")
            later[size] = hold_back(folder, args.new, work / f"later-{size}")
        # One command per size, the same for its first and its incremental run.
        commands = {
            size: (
                work / f"in-{size}",
                work / f"run-{size}",
                "--table",
                str(work / f"table-{size}"),
            )
            for size in sizes
        }
        waited = wait_for_quiet(args.quiet_wait)
        load_start, started = load_average(), time.strftime("%Y-%m-%dT%H:%M:%S")
        firsts = {size: run(*commands[size]) for size in sizes}
        for size in sizes:
            restore(later[size], work / f"later-{size}")
        incrementals = {size: run(*commands[size]) for size in sizes}
        fulls = {
            size: run(work / f"in-{size}", work / f"full-{size}", shared=True) for size in sizes
        }
        load = {"start": load_start, "end": load_average(), "waited_s": waited}
    results = [TableSize(size, firsts[size], incrementals[size], fulls[size]) for size in sizes]
    figures = {"started": started, **table_figures(args.new, results), "load_average": load}
    print_table(figures)
    return figures


def reused(manifest: Manifest) -> int:
    """Listed files a run with a table took from it as they were: every other listed file went
    through its model pass (``collection.featurized``)."""
    assert manifest.counts and manifest.collection
    return manifest.counts.files_seen - manifest.collection.featurized


def table_figures(new: int, results: list[TableSize]) -> dict:
    """The ``--table`` benchmark's figures; ``ratio``: the largest collection's incremental
    run over the smallest's, after start-up."""
    runs = {}
    for result in results:
        incremental, full = result.incremental[0], result.full[0]
        assert incremental.counts and full.counts
        runs[str(result.size)] = {
            "first_s": seconds(result.first[0]),
            "incremental_s": seconds(incremental),
            "full_s": seconds(full),
            "incremental_over_full": round(seconds(incremental) / seconds(full), 3),
            "process_s": {
                "first": round(result.first[1], 2),
                "incremental": round(result.incremental[1], 2),
                "full": round(result.full[1], 2),
            },
            "incremental_model_runs": incremental.counts.model_runs,
            "incremental_reused": reused(incremental),
            "full_model_runs": full.counts.model_runs,
            "incremental_timings_s": incremental.timings_s,
            "full_timings_s": full.timings_s,
        }
    smallest, largest = (seconds(results[i].incremental[0]) for i in (0, -1))
    ratio = round(largest / smallest, 3)
    return {
        "machine": machine(),
        "sizes": [result.size for result in results],
        "new": new,
        "runs": runs,
        "ratio": ratio,
        "target": TABLE_TARGET,
        "met": ratio <= TABLE_TARGET,
    }


def print_table(figures: dict) -> None:
    """Print ``table_figures`` (with ``load_average``): each size's three runs, the incremental
    run's stages, and the ratio against its target."""
    new, sizes = figures["new"], figures["sizes"]
    print(f"machine: {figures['machine']}")
    for size in sizes:
        run_figures = figures["runs"][str(size)]
        print(
            f"collection of {size:,} photos, then {new:,} new ({size + new:,} in all); "
            "seconds after start-up:"
        )
        print(f"  first run, empty table: {run_figures['first_s']:.1f}")
        print(
            f"  incremental (the same command): the model ran on "
            f"{run_figures['incremental_model_runs']:,} photos, "
            f"{run_figures['incremental_reused']:,} reused: {run_figures['incremental_s']:.1f}"
        )
        print(
            f"  full run, no table: the model ran on {run_figures['full_model_runs']:,} photos: "
            f"{run_figures['full_s']:.1f}"
        )
        print(f"  incremental / full = {run_figures['incremental_over_full']:.2f}x")
        print(f"  incremental's stages (s): {stages(run_figures['incremental_timings_s'])}")
    print(
        f"incremental runs: {sizes[-1]:,} / {sizes[0]:,} = {figures['ratio']:.2f}x after start-up "
        f"(target <= {figures['target']}x): {'met' if figures['met'] else 'NOT MET'}"
    )
    load = figures["load_average"]
    print(f"load average: start {load['start']}, end {load['end']} (waited {load['waited_s']} s)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: ``--table`` picks the collection benchmark, else ``--incremental-from``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8000, help="photos in the first run")
    parser.add_argument("--new-share", type=float, default=0.10, help="share of new photos")
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="B, C pairs, run in turn; the ratios are of their sums (default: %(default)s)",
    )
    parser.add_argument(
        "--table",
        action="store_true",
        help="a collection (run --table) at each of --sizes instead (see the module's help)",
    )
    parser.add_argument(
        "--sizes",
        default="8000,32000",
        help="with --table: the collections' sizes, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--new", type=int, default=800, help="with --table: new photos (default: %(default)s)"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=600,
        help="seconds to wait for a quiet machine before timing (default: %(default)s)",
    )
    parser.add_argument("--no-save", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source = SHARED_SAMPLE if SHARED_SAMPLE.is_dir() else SHIPPED_SAMPLE
    figures = table_mode(args, source) if args.table else from_run_mode(args, source)
    if not args.no_save:
        name = "incremental_table.json" if args.table else "incremental.json"
        (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

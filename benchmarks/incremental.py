"""Incremental runs against full runs: the time after start-up, in one sitting.

A folder of N real photos (the shared sample, replicated; default N = 8,000) gets a full run
(A); 10 % new photos are added; then, side by side, an incremental run from A (B) and a full run
on the same final folder (C), in turn ``--repeats`` times. Target: B takes at most 0.5x C's
time after start-up (``manifest.throughput.job_seconds_after_startup``: featurize to manifest),
the ratio of their sums. Printed beside it: the same with the listing stage (where B finds its
new files), and the whole processes. B's stage timings name the costs an incremental run keeps
paying whatever the number of new photos.

    .venv/bin/python -m benchmarks.incremental                 # N = 8,000 (about 9 minutes here)
    .venv/bin/python -m benchmarks.incremental --n 40 --repeats 1   # a quick check (CI runs it)

Writes ``benchmarks/results/incremental.json`` unless ``--no-save``.
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
# An incremental run also plans its increment in the listing stage.
LIST_STAGE = Stage.LIST.key


def run(images: Path, output: Path, *extra: str) -> tuple[Manifest, float]:
    """The job's manifest, and the wall seconds of its whole process (start-up included)."""
    manifest, wall, _ = run_job(images, output, "--no-probe", *extra)
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


def main() -> int:
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
        "--quiet-wait",
        type=float,
        default=600,
        help="seconds to wait for a quiet machine before timing (default: %(default)s)",
    )
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    source = SHARED_SAMPLE if SHARED_SAMPLE.is_dir() else SHIPPED_SAMPLE
    new = round(args.n * args.new_share)
    pairs: list[tuple[Manifest, Timed, Manifest, Timed]] = []
    with tempfile.TemporaryDirectory(prefix="fruits-incremental-") as scratch:
        work = Path(scratch)
        folder = prepare_images(source, args.n + new, work / "in")
        later = sorted(folder.rglob("*.jpg"), key=lambda p: p.name)[args.n :]
        held = work / "later"
        for photo in later:  # the newest photos wait outside the folder for the second run
            (held / photo.parent.name).mkdir(parents=True, exist_ok=True)
            photo.rename(held / photo.parent.name / photo.name)
        waited = wait_for_quiet(args.quiet_wait)
        load_start = load_average()
        first, _ = run(folder, work / "A")
        for photo in later:
            (held / photo.parent.name / photo.name).rename(photo)
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        for _ in range(args.repeats):
            incremental = run(folder, work / "B", "--incremental-from", str(work / "A"))
            full = run(folder, work / "C")
            pairs.append((incremental[0], Timed.of(incremental), full[0], Timed.of(full)))
        load_end = load_average()
    b_total = reduce(operator.add, (pair[1] for pair in pairs))
    c_total = reduce(operator.add, (pair[3] for pair in pairs))
    ratios = b_total.ratio(c_total)
    last_b, _, last_c, _ = pairs[-1]
    assert last_b.counts and last_c.counts and first.counts
    figures = {
        "started": started,
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
        "load_average": {"start": load_start, "end": load_end, "waited_s": waited},
    }
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
        f"  B / C = {ratios.after_startup:.2f}x after start-up (target <= {TARGET_RATIO}x): "
        f"{'met' if figures['met'] else 'NOT met'}; {ratios.with_listing:.2f}x with the listing "
        f"stage (B plans its increment there); {ratios.process:.2f}x whole processes"
    )
    for name, manifest in (("B", last_b), ("C", last_c)):
        stages = ", ".join(f"{k} {v:.1f}" for k, v in manifest.timings_s.items())
        print(f"  {name}{len(pairs)}'s stages (s): {stages}")
    print(f"load average: start {load_start}, end {load_end} (waited {waited} s)")
    if not args.no_save:
        target = ROOT / "benchmarks" / "results" / "incremental.json"
        target.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

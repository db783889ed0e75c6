"""Incremental runs against full runs: the time after start-up, in one sitting.

A folder of N real photos (the shared sample, replicated; default N = 8,000) gets a full run
(A); 10 % new photos are added; then, side by side, an incremental run from A (B) and a full run
on the same final folder (C). Target: B takes at most 0.5x C's time after start-up
(``manifest.throughput.job_seconds_after_startup``: featurize to manifest). Printed beside it:
the same with the listing stage (where B finds its new files), and the whole processes. B's
stage timings name the costs an incremental run keeps paying whatever the number of new photos.

    .venv/bin/python -m benchmarks.incremental            # N = 8,000 (about 6 minutes here)
    .venv/bin/python -m benchmarks.incremental --n 40     # a quick check (CI runs it)

Writes ``benchmarks/results/incremental.json`` unless ``--no-save``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.throughput import (
    ROOT,
    SHARED_SAMPLE,
    SHIPPED_SAMPLE,
    WEIGHTS,
    load_average,
    machine,
    prepare_images,
    run_measured,
    wait_for_quiet,
)
from fruits_pipeline.manifest import Manifest

TARGET_RATIO = 0.5


LIST_STAGE = "list input"  # job.Stage.LIST: an incremental run also plans its increment there


def run(images: Path, output: Path, *extra: str) -> tuple[Manifest, float]:
    """The job's manifest, and the wall seconds of its whole process (start-up included)."""
    command = [str(Path(sys.executable).parent / "fruits-pipeline"), "--input", str(images),
               "--output", str(output), "--weights", str(WEIGHTS), "--no-probe", "--overwrite",
               *extra]  # fmt: skip
    _, wall, _ = run_measured(command)
    return Manifest.loads((output / "manifest.json").read_text()), wall


def seconds(manifest: Manifest) -> float:
    assert manifest.throughput is not None
    return manifest.throughput.job_seconds_after_startup


def with_listing(manifest: Manifest) -> float:
    """After start-up plus the listing stage, where an incremental run finds its new files."""
    return seconds(manifest) + manifest.timings_s[LIST_STAGE]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8000, help="photos in the first run")
    parser.add_argument("--new-share", type=float, default=0.10, help="share of new photos")
    parser.add_argument("--quiet-wait", type=float, default=600, help="seconds to wait for a "
                        "quiet machine before timing (default: %(default)s)")  # fmt: skip
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    source = SHARED_SAMPLE if SHARED_SAMPLE.is_dir() else SHIPPED_SAMPLE
    new = round(args.n * args.new_share)
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
        incremental, incremental_wall = run(folder, work / "B", "--incremental-from",
                                            str(work / "A"))  # fmt: skip
        full, full_wall = run(folder, work / "C")
        load_end = load_average()
    assert incremental.counts and full.counts and first.counts
    ratio = seconds(incremental) / seconds(full)
    listing_ratio = with_listing(incremental) / with_listing(full)
    figures = {
        "started": started, "machine": machine(), "n_first": args.n, "new": new,
        "first_full_s": seconds(first), "incremental_s": seconds(incremental),
        "full_s": seconds(full), "ratio": round(ratio, 3), "target": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
        "with_listing_s": {"incremental": round(with_listing(incremental), 3),
                           "full": round(with_listing(full), 3),
                           "ratio": round(listing_ratio, 3)},
        "process_wall_s": {"incremental": round(incremental_wall, 2),
                           "full": round(full_wall, 2),
                           "ratio": round(incremental_wall / full_wall, 3)},
        "incremental_counts": {"model_runs": incremental.counts.model_runs,
                               "reused": incremental.counts.reused,
                               "featurized_new": incremental.counts.featurized_new},
        "incremental_timings_s": incremental.timings_s, "full_timings_s": full.timings_s,
        "load_average": {"start": load_start, "end": load_end, "waited_s": waited},
    }  # fmt: skip
    print(f"machine: {figures['machine']}")
    print(f"first full run on {args.n:,} photos: {seconds(first):.1f} s after start-up")
    print(f"then {new:,} new photos ({args.new_share:.0%}), {args.n + new:,} in all:")
    print(
        f"  incremental run (B): {seconds(incremental):6.1f} s, the model ran on "
        f"{incremental.counts.model_runs:,} photos, {incremental.counts.reused:,} reused"
    )
    print(
        f"  full run (C):        {seconds(full):6.1f} s, the model ran on "
        f"{full.counts.model_runs:,} photos"
    )
    print(
        f"  B / C = {ratio:.2f}x (target <= {TARGET_RATIO}x): "
        f"{'met' if figures['met'] else 'NOT met'}"
    )
    print(
        f"  with the listing stage (B plans its increment there): {with_listing(incremental):.1f}"
        f" s against {with_listing(full):.1f} s, {listing_ratio:.2f}x"
    )
    print(
        f"  whole processes (JVM and model start-up included): {incremental_wall:.1f} s against "
        f"{full_wall:.1f} s, {incremental_wall / full_wall:.2f}x"
    )
    print(
        "  B's stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in incremental.timings_s.items())
    )
    print("  C's stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in full.timings_s.items()))
    print(f"load average: start {load_start}, end {load_end} (waited {waited} s)")
    if not args.no_save:
        target = ROOT / "benchmarks" / "results" / "incremental.json"
        target.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

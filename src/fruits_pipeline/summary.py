"""The run summary printed at the end of a run: at most ``MAX_LINES`` lines, whatever the number
of classes, read from the manifest alone.

Per-label detail (every class's count, recall and errors) belongs in ``manifest.json`` and the
report; the summary names only the extremes: the smallest and largest classes, the most frequent
error kinds.
"""

from __future__ import annotations

from collections.abc import Iterable

from fruits_pipeline.config import ORB
from fruits_pipeline.manifest import SUCCEEDED, CollectionInfo, Counts, Manifest, ProbeSummary

MAX_LINES = 12
NAMED = 3  # classes named at each end, error kinds named before "... more"
_NAME_CHARS = 28


def _short(name: str) -> str:
    return name if len(name) <= _NAME_CHARS else name[: _NAME_CHARS - 1] + "…"


def _listed(pairs: Iterable[tuple[str, int]], total: int, noun: str) -> str:
    """``"a 3, b 2, c 1"`` for the first ``NAMED`` pairs, then ``"(+N more <noun>)"``."""
    shown = [f"{_short(name)} {count:,}" for name, count in list(pairs)[:NAMED]]
    more = total - len(shown)
    return ", ".join(shown) + (f" (+{more:,} more {noun})" if more > 0 else "")


def count_lines(counts: Counts) -> list[str]:
    """Images, errors by kind, class count with the smallest and largest classes."""
    lines = [
        f"  images     {counts.files_seen:,} seen, {counts.featurized:,} featurized, "
        f"{counts.errors:,} errors"
    ]
    kinds = counts.errors_by_kind or {}
    if kinds:
        lines.append("  errors     " + _listed(kinds.items(), len(kinds), "kinds"))
    per_label = sorted(counts.images_per_label.items(), key=lambda item: (item[1], item[0]))
    if per_label:
        sizes = [count for _, count in per_label]
        lines.append(
            f"  classes    {len(per_label):,}, {sizes[0]:,} to {sizes[-1]:,} images each "
            f"(median {sizes[len(sizes) // 2]:,})"
        )
    if len(per_label) > 2 * NAMED:
        lines.append("  smallest   " + _listed(per_label, NAMED, "classes"))
        largest = sorted(per_label, key=lambda item: (-item[1], item[0]))
        lines.append("  largest    " + _listed(largest, NAMED, "classes"))
    elif per_label:
        lines.append("  per class  " + ", ".join(f"{_short(n)} {c:,}" for n, c in per_label))
    return lines


def probe_lines(probe: ProbeSummary | None) -> list[str]:
    """The logistic regression's scores, then every classifier's accuracy and training time."""
    if probe is None or probe.status != SUCCEEDED:
        reason = probe.reason if probe else "not run"
        return [f"  probe      skipped: {reason}"]
    rows = f"{probe.train_rows:,}" if probe.train_rows is not None else "all"
    lines = [
        f"  probe      accuracy {probe.accuracy:.4f}, macro F1 {probe.macro_f1:.4f} "
        f"(logistic regression; trained on {rows} rows, tested on {probe.test_images:,})"
    ]
    if probe.classifiers:
        lines.append(
            "  compared   "
            + ", ".join(
                f"{s.name.replace('_', ' ')} {s.accuracy:.3f} ({s.train_seconds:.1f} s)"
                for s in probe.classifiers
            )
        )
    return lines


def collection_lines(info: CollectionInfo | None) -> list[str]:
    """With ``--table``: the collection's size, what the run changed in it, and the fit."""
    if info is None:
        return []
    chunks = f"{info.chunks:,} chunk" + ("s" if info.chunks != 1 else "")
    notes = []
    drift = info.drift or {}
    new = drift.get("new")
    if new is not None and new["rows"] == 0:
        notes.append("no new photos")
    elif new is not None:
        drop = drift.get("retained_drop")
        kept = f"{drop:.3f} less variance kept, " if drop is not None else ""
        notes.append(f"new photos: {kept}mean shift {new['mean_shift']:.2f} sd")
    if info.previous_snapshot is None:
        notes.append("moments summed from every row")
    return [
        f"  collection {info.table}: {info.rows:,} photos, {info.featurized:,} featurized in "
        f"{chunks}, {info.removed:,} removed; "
        + ("refitted" if info.refitted else "model kept")
        + (f" ({'; '.join(notes)})" if notes else "")
    ]


def summary_lines(manifest: Manifest) -> list[str]:
    """The run summary: at most ``MAX_LINES`` lines for any number of classes or error kinds."""
    counts, reduction, throughput = manifest.counts, manifest.reduction, manifest.throughput
    lines = [f"run {manifest.status}: {manifest.output}"]
    lines += count_lines(counts) if counts else ["  images     not counted"]
    if reduction is not None:
        kept = (
            f"{reduction.achieved_variance:.4f}"
            if reduction.achieved_variance is not None
            else "none"
        )
        lines.append(
            f"  k          {reduction.k} ({reduction.k_rule}; target "
            f"{reduction.target_variance}, kept {kept})"
        )
    if throughput is not None:
        # An incremental or table run with nothing new runs no model: no featurize rate to give.
        featurize = (
            "no image needed the model"
            if counts is not None and counts.model_runs == 0
            else f"featurize {throughput.featurize_images_per_s:,.1f} img/s"
        )
        lines.append(
            f"  speed      {featurize}, whole job {throughput.job_images_per_s:,.1f} img/s "
            "after start-up"
        )
    lines += collection_lines(manifest.collection)
    lines += probe_lines(manifest.probe)
    weights = manifest.weights
    model = f", weights {weights.source} (sha256 {weights.sha256[:12]}…)"
    uses_model = manifest.extractor != ORB
    gate = manifest.quantization
    if gate is not None:
        model += (
            f"; int8, calibrated on {gate.calibration_images}, gate on {gate.gate_images}: "
            f"cosine to f32 mean {gate.mean_cosine}, worst {gate.worst_cosine}"
        )
    lines.append(f"  features   {manifest.extractor}" + (model if uses_model else ""))
    return lines

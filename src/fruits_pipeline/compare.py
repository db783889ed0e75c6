"""Two runs side by side (``fruits-pipeline report RUN --compare OTHER_RUN``): what each cost and
what each classifier of the probe scored, and the classes whose recall differs most.

Reads the two manifests only, so runs on different photos can be compared too; the figures are
then the reader's to weigh (the table says how many images each run had).
"""

from __future__ import annotations

import html
from typing import Any

from fruits_pipeline import report_html
from fruits_pipeline.manifest import SUCCEEDED, Manifest

RECALL_DIFFERENCES = 15  # classes listed by how much their recall differs


def _value(manifest: Manifest, name: str) -> Any:
    """One compared figure of a run (``""`` when the run does not have it)."""
    counts, reduction, throughput = manifest.counts, manifest.reduction, manifest.throughput
    figures: dict[str, Any] = {
        "extractor": manifest.extractor,
        "images featurized": counts.featurized if counts else "",
        "errors": counts.errors if counts else "",
        "classes": len(counts.per_label) if counts else "",
        "k": reduction.k if reduction else "",
        "variance kept": reduction.achieved_variance if reduction else "",
        "featurize img/s": throughput.featurize_images_per_s if throughput else "",
        "job seconds after start-up": throughput.job_seconds_after_startup if throughput else "",
    }
    return figures[name]


def _classifier_figures(manifest: Manifest) -> dict[str, Any]:
    """``{"<classifier> accuracy" | "... macro F1" | "... training s": value}`` of a run."""
    probe = manifest.probe
    if probe is None or probe.status != SUCCEEDED:
        return {}
    figures: dict[str, Any] = {}
    for score in probe.classifiers or []:
        name = score.name.replace("_", " ")
        figures[f"{name}: accuracy"] = score.accuracy
        figures[f"{name}: macro F1"] = score.macro_f1
        figures[f"{name}: training s"] = score.train_seconds
    return figures


def comparison_rows(run: Manifest, other: Manifest) -> list[tuple[Any, Any, Any]]:
    """``(figure, run's value, other's value)`` for every figure either run has."""
    names = [
        "extractor",
        "images featurized",
        "errors",
        "classes",
        "k",
        "variance kept",
        "featurize img/s",
        "job seconds after start-up",
    ]
    rows = [(name, _value(run, name), _value(other, name)) for name in names]
    ours, theirs = _classifier_figures(run), _classifier_figures(other)
    for name in dict.fromkeys([*ours, *theirs]):
        rows.append((name, ours.get(name, ""), theirs.get(name, "")))
    return rows


def recall_differences(run: Manifest, other: Manifest) -> list[tuple[str, float, float, float]]:
    """Classes in both probes, by how far apart their recall is (largest first)."""
    ours = run.probe.per_class_recall if run.probe else None
    theirs = other.probe.per_class_recall if other.probe else None
    if not ours or not theirs:
        return []
    common = sorted(set(ours) & set(theirs))
    rows = [(label, ours[label], theirs[label], ours[label] - theirs[label]) for label in common]
    return sorted(rows, key=lambda row: (-abs(row[3]), row[0]))[:RECALL_DIFFERENCES]


def comparison_section(run: Manifest, other: Manifest) -> str:
    """The HTML section comparing ``run`` (this report's) with ``other``."""
    headers = ["", f"this run ({html.escape(run.output)})", f"other ({other.output})"]
    differences = recall_differences(run, other)
    section = f"<h2>Compared with {html.escape(other.output)}</h2>" + report_html.table(
        headers, comparison_rows(run, other)
    )
    if differences:
        section += "<h3>Classes whose recall differs most (logistic regression)</h3>" + (
            report_html.table(["class", "this run", "other", "difference"], differences)
        )
    return section

"""``fruits-pipeline report RUN [--compare OTHER_RUN]``: one self-contained HTML report of a
finished run, readable at 120+ classes, with static PNGs beside it.

Runs locally (not on the cluster) and needs the ``[report]`` extra (matplotlib). Reads
``manifest.json`` and the ``pca/`` and ``errors/`` Parquet of RUN (a local folder or an
``s3://`` prefix, downloaded with boto3). ``report.html`` holds the run's facts, the explained
variance curve, an interactive 2-D projection (hover, search and highlight a class), the probe's
classifiers, tables and confusion heat map, images per class and errors by kind and class; its
one script is embedded (``report.js``), so it opens offline. ``variance.png``, ``scatter.png``
and ``confusion.png`` are the static figures, for slides and summaries. With ``--compare``, a
section puts OTHER_RUN's figures beside RUN's (for example mobilenet_v2 against orb features).
"""

from __future__ import annotations

import base64
import html
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fruits_pipeline import report_html
from fruits_pipeline.config import ReportConfig
from fruits_pipeline.errors import ExitCode
from fruits_pipeline.layout import ERRORS, MANIFEST, PCA, RunLayout
from fruits_pipeline.manifest import SUCCEEDED, Manifest, ProbeSummary
from fruits_pipeline.storage import is_s3_uri, parse_s3_uri, s3_client

# Every static figure is drawn at this size: 800 x 500 pixels.
FIGURE_INCHES = (8.0, 5.0)
FIGURE_DPI = 100
FIGURES = ("variance", "scatter", "confusion")
LEGEND_MAX_CLASSES = 20  # above, the static scatter has no legend (the HTML one is searchable)
# Points per label in the projections: all labels together stay near PROJECTION_POINTS, so the
# page stays light at 120+ classes, and a small class keeps at least MIN_PER_LABEL points.
PROJECTION_POINTS = 12_000
MIN_PER_LABEL, MAX_PER_LABEL = 20, 300
ERRORS_SHOWN = 200


def fetch_run(location: str, scratch: Path) -> Path:
    """A local folder holding RUN's ``manifest.json``, ``pca/`` and ``errors/``."""
    if not is_s3_uri(location):
        return Path(location.removeprefix("file:"))
    bucket, prefix = parse_s3_uri(location.rstrip("/") + "/")
    client = s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :]
            if relative == MANIFEST or relative.startswith((f"{PCA}/", f"{ERRORS}/")):
                target = scratch / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, item["Key"], str(target))
    return scratch


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=FIGURE_INCHES, dpi=FIGURE_DPI)
    return figure, axes


def _save(figure: Any, path: Path) -> Path:
    from matplotlib import pyplot

    figure.tight_layout()
    figure.savefig(path, dpi=FIGURE_DPI)  # no bbox="tight": every PNG keeps its stated size
    pyplot.close(figure)
    return path


def _message(axes: Any, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", fontsize=13, wrap=True)
    axes.set_axis_off()


def plot_variance(manifest: Manifest, path: Path) -> Path:
    reduction = manifest.reduction
    figure, axes = _figure()
    axes.set_title("Cumulative explained variance of the standardised features")
    if reduction is None or not reduction.cumulative_variance:
        note = reduction.note if reduction else "no reduction: the run did not get there"
        _message(axes, note or "no variance curve in this run")
        return _save(figure, path)
    curve = reduction.cumulative_variance
    components = np.arange(1, len(curve) + 1)
    k, target = reduction.k, reduction.target_variance
    axes.plot(components, curve, color="tab:blue", label="cumulative explained variance")
    axes.axhline(target, color="tab:red", linestyle="--", label=f"target {target:.0%}")
    axes.axvline(k, color="tab:green", linestyle=":", label=f"chosen k = {k}")
    axes.scatter([k], [reduction.achieved_variance], color="tab:green", zorder=3)
    axes.set_xscale("log")
    axes.set_xlabel("number of principal components (log scale)")
    axes.set_ylabel("share of variance kept")
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_scatter(points: dict[str, Any], path: Path) -> Path:
    """The projection's points (``report_html.projection_data``) as a static PNG; a legend only
    up to ``LEGEND_MAX_CLASSES`` classes."""
    figure, axes = _figure()
    labels = points["labels"]
    axes.set_title(f"First two principal components, {len(labels)} classes")
    if not points["shown"]:
        _message(axes, "no featurized images")
        return _save(figure, path)
    x, y, index = (np.asarray(points[name]) for name in ("x", "y", "label"))
    for position, (label, colour) in enumerate(zip(labels, points["colours"], strict=True)):
        mask = index == position
        axes.scatter(
            x[mask], y[mask], s=6 if len(labels) > 20 else 12, alpha=0.7, color=colour, label=label
        )
    axes.set_xlabel("principal component 1")
    axes.set_ylabel("principal component 2")
    axes.grid(alpha=0.3)
    if len(labels) <= LEGEND_MAX_CLASSES:
        axes.legend(title="label", fontsize=8, loc="best", markerscale=1.5, ncol=2)
    return _save(figure, path)


def plot_confusion(probe: ProbeSummary | None, path: Path) -> Path:
    """The logistic regression's confusion matrix, shares of the true class (rows); names on
    the axes and counts in the cells only while they stay legible."""
    figure, axes = _figure()
    axes.set_title("Probe (logistic regression): confusion matrix on the test images")
    if probe is None or probe.status != SUCCEEDED or probe.confusion_matrix is None:
        _message(axes, f"probe skipped: {probe.reason if probe else 'not run'}")
        return _save(figure, path)
    labels, matrix = report_html.confusion_frame(probe)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = axes.imshow(np.sqrt(shares), cmap="Blues", vmin=0, vmax=1)
    colorbar = figure.colorbar(image, ax=axes, label="share of the true class")
    colorbar.set_ticks(np.sqrt([0, 0.05, 0.25, 0.5, 1]), labels=["0", ".05", ".25", ".5", "1"])
    axes.set_xlabel(f"predicted label (accuracy {probe.accuracy:.3f})")
    axes.set_ylabel("true label")
    if len(labels) <= report_html.AXIS_LABELS_MAX_CLASSES:
        ticks = np.arange(len(labels))
        axes.set_xticks(ticks, labels, rotation=45, ha="right", fontsize=7)
        axes.set_yticks(ticks, labels, fontsize=7)
    if len(labels) <= report_html.CELL_TEXT_MAX_CLASSES:
        for (row, column), value in np.ndenumerate(matrix):
            colour = "white" if shares[row, column] > 0.5 else "black"
            axes.text(column, row, str(value), ha="center", va="center", fontsize=8, color=colour)
    return _save(figure, path)


def per_label_points(labels: int) -> int:
    return max(MIN_PER_LABEL, min(MAX_PER_LABEL, PROJECTION_POINTS // max(labels, 1)))


def _embedded(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def counts_section(manifest: Manifest) -> str:
    """Images per class, fewest featurized first (sortable, folded beyond a screenful)."""
    per_label = manifest.counts.per_label if manifest.counts else {}
    if not per_label:
        return "<h2>Images per class</h2><p>No counts: the run stopped before featurizing.</p>"
    rows = sorted(
        ((label, c.files_seen, c.featurized, c.errors) for label, c in per_label.items()),
        key=lambda row: (row[2], row[0]),
    )
    return (
        f"<h2>Images per class</h2><p>{len(rows):,} classes, from {rows[0][2]:,} to "
        f"{rows[-1][2]:,} featurized images; fewest first.</p>"
        + report_html.table(["class", "files", "featurized", "errors"], rows, sortable=True)
    )


def errors_section(errors: pd.DataFrame) -> str:
    """Errors by kind, by class, and the first ``ERRORS_SHOWN`` files with their message."""
    if errors.empty:
        return "<h2>Errors</h2><p>None: every image was featurized.</p>"
    by_kind = errors["error_kind"].value_counts()
    by_class = errors.groupby(["label", "error_kind"]).size().reset_index(name="files")
    by_class = by_class.sort_values(["files", "label"], ascending=[False, True])
    files = errors.sort_values("path").head(ERRORS_SHOWN)
    shown = f"; the first {ERRORS_SHOWN} files below" if len(errors) > ERRORS_SHOWN else ""
    return (
        f"<h2>Errors</h2><p>{len(errors):,} images could not be used{shown}.</p>"
        "<h3>By kind</h3>"
        + report_html.table(["kind", "files"], [(k, int(n)) for k, n in by_kind.items()])
        + "<h3>By class</h3>"
        + report_html.table(
            ["class", "kind", "files"],
            [(r.label, r.error_kind, int(r.files)) for r in by_class.itertuples()],
            sortable=True,
        )
        + "<h3>Files</h3>"
        + report_html.table(
            ["path", "label", "kind", "message"],
            [(r.path, r.label, r.error_kind, r.error_message) for r in files.itertuples()],
        )
    )


def probe_section(probe: ProbeSummary | None) -> str:
    """The classifiers' scores, the probe tables and the confusion heat map."""
    if probe is None or probe.status != SUCCEEDED:
        reason = html.escape(probe.reason if probe else "not run")
        return f'<h2 id="probe">Probe</h2><p>Skipped: {reason}</p>'
    rows = probe.train_rows if probe.train_rows is not None else probe.train_images
    return (
        '<h2 id="probe">Probe</h2>'
        f"<p>{html.escape(probe.split or '')}: trained on {rows:,} of "
        f"{probe.train_images:,} training images (at most {probe.train_rows_per_class or 'all'} "
        f"per class, a seeded sample), tested on {probe.test_images:,}.</p>"
        + report_html.classifier_table(probe)
        + report_html.probe_tables(probe)
        + "<h3>Confusion matrix of the logistic regression (rows: true class; hover a cell)</h3>"
        + report_html.heat_map(probe)
    )


def facts_section(manifest: Manifest) -> str:
    counts, reduction, probe = manifest.counts, manifest.reduction, manifest.probe
    accuracy = (
        f"{probe.accuracy:.4f} (macro F1 {probe.macro_f1:.4f}; {probe.split})"
        if probe and probe.status == SUCCEEDED
        else f"skipped: {probe.reason if probe else 'not run'}"
    )
    facts = {
        "status": manifest.status + (f": {manifest.error}" if manifest.error else ""),
        "input": manifest.input,
        "output": manifest.output,
        "extractor": manifest.extractor,
        "images": f"{counts.files_seen:,} seen, {counts.featurized:,} featurized, "
        f"{counts.errors:,} errors in {len(counts.per_label):,} classes"
        if counts
        else "not counted",
        "k": f"{reduction.k} components ({reduction.k_rule}; target "
        f"{reduction.target_variance}, kept {reduction.achieved_variance})"
        if reduction
        else "not reached",
        "probe accuracy": accuracy,
        "weights": f"{manifest.weights.source} (sha256 {manifest.weights.sha256})",
        "finished": manifest.finished_at or "",
    }
    items = "".join(
        f"<dt>{html.escape(key)}</dt><dd>{html.escape(str(value))}</dd>"
        for key, value in facts.items()
    )
    return f"<dl>{items}</dl>"


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;
padding:.2em .5em}th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer}table.sortable th[data-order=asc]::after{content:" ▲"}
table.sortable th[data-order=desc]::after{content:" ▼"}
table.folded tbody tr:nth-child(n+21){display:none}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}figcaption{color:#555}
canvas{border:1px solid #eee;display:block;margin-top:.5em;max-width:100%}
#tip{position:absolute;display:none;background:#fff;border:1px solid #888;padding:.3em .5em;
font-size:.8em;white-space:pre;pointer-events:none;box-shadow:0 1px 4px #0003}
#picked{color:#555}svg.heat text{font-size:9px}svg.heat text.row{text-anchor:end;
dominant-baseline:middle}svg.heat text.cell{text-anchor:middle;dominant-baseline:middle}"""


def render_html(
    manifest: Manifest,
    figures: dict[str, Path],
    points: dict[str, Any],
    errors: pd.DataFrame,
    comparison: str = "",
) -> str:
    """The whole page: facts, variance figure, projection, probe, counts, errors, comparison."""
    script = resources.files("fruits_pipeline").joinpath("report.js").read_text("utf-8")
    variance = _embedded(
        figures["variance"],
        "Cumulative explained variance; the dashed line is the target, the dotted line the "
        "chosen k.",
    )
    shown = (
        '<h2 id="projection">First two principal components</h2>'
        f"<p>{points['shown']:,} of "
        f"{points['total']:,} images, at most {per_label_points(len(points['labels']))} per "
        "class. Hover a point for its class and path; type or pick a class, or click a point, "
        "to highlight its class.</p>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>fruits-pipeline report</title><style>{_STYLE}</style></head><body>"
        f"<h1>fruits-pipeline run report</h1>{facts_section(manifest)}{comparison}{variance}"
        f"{shown}{report_html.projection(points)}{probe_section(manifest.probe)}"
        f"{counts_section(manifest)}{errors_section(errors)}"
        f"<script>{script}</script></body></html>"
    )


def read_run(run: Path) -> tuple[Manifest, pd.DataFrame, pd.DataFrame]:
    """The manifest, ``pca/`` and ``errors/`` of a local run folder (empty frames if absent)."""
    layout = RunLayout(str(run))
    manifest = Manifest.loads(Path(layout.manifest).read_text())
    pca_dir, errors_dir = Path(layout.pca), Path(layout.errors)
    pca = (
        pd.read_parquet(pca_dir)
        if pca_dir.is_dir()
        else pd.DataFrame(columns=["path", "label", "pca_features"])
    )
    errors = pd.read_parquet(errors_dir) if errors_dir.is_dir() else pd.DataFrame()
    return manifest, pca, errors


def write_report(run: Path, out: Path, seed: int = 42, compare: Path | None = None) -> Path:
    """Draw the figures of the run in ``run`` into ``out``; return the path of report.html.

    ``compare``: another local run folder, put side by side with ``run`` in the page.
    """
    from fruits_pipeline.compare import comparison_section

    manifest, pca, errors = read_run(run)
    prefix = manifest.input.rstrip("/") + "/"
    points = report_html.projection_data(
        pca, seed, per_label_points(pca["label"].nunique()), prefix
    )
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "variance": plot_variance(manifest, out / "variance.png"),
        "scatter": plot_scatter(points, out / "scatter.png"),
        "confusion": plot_confusion(manifest.probe, out / "confusion.png"),
    }
    other = read_run(compare)[0] if compare else None
    comparison = comparison_section(manifest, other) if other else ""
    report = out / "report.html"
    report.write_text(render_html(manifest, figures, points, errors, comparison), "utf-8")
    return report


def main(config: ReportConfig) -> int:
    """``fruits-pipeline report``: write the report of ``config.run`` (beside ``config.compare``
    when given); return the exit code."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        message = "fruits-pipeline report needs matplotlib: pip install 'fruits-pipeline[report]'"
        print(message, file=sys.stderr)
        return int(ExitCode.FAILURE)
    with tempfile.TemporaryDirectory(prefix="fruits-report-") as scratch:
        run = fetch_run(config.run, Path(scratch) / "run")
        other = fetch_run(config.compare, Path(scratch) / "other") if config.compare else None
        for location, folder in ((config.run, run), (config.compare, other)):
            if folder is not None and not Path(RunLayout(str(folder)).manifest).is_file():
                print(f"fruits-pipeline report: no manifest.json in {location}", file=sys.stderr)
                return int(ExitCode.NO_INPUT)
        default = Path("report") if is_s3_uri(config.run) else run / "report"
        report = write_report(run, Path(config.out) if config.out else default, compare=other)
    print(f"report written: {report}")
    return int(ExitCode.OK)

"""``fruits-pipeline report RUN``: a self-contained HTML report of a finished run, with PNGs.

Runs locally (not on the cluster) and needs the ``[report]`` extra (matplotlib). Reads
``manifest.json`` and the ``pca/`` and ``errors/`` Parquet of RUN (a local folder or an
``s3://`` prefix, downloaded with boto3), draws five views and embeds them in ``report.html``:
the cumulative explained variance with k and the target marked, the first two principal
components coloured by label, images per class, the probe's confusion matrix, and the errors.
"""

from __future__ import annotations

import base64
import html
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fruits_pipeline.config import ReportConfig
from fruits_pipeline.errors import ExitCode
from fruits_pipeline.layout import ERRORS, MANIFEST, PCA, RunLayout
from fruits_pipeline.manifest import SUCCEEDED, Manifest, ProbeSummary
from fruits_pipeline.storage import is_s3_uri, parse_s3_uri, s3_client

# Every figure is drawn at this size: 800 x 500 pixels.
FIGURE_INCHES = (8.0, 5.0)
FIGURE_DPI = 100
SCATTER_PER_LABEL = 300  # points per label in the scatter: readable, and cheap to draw
ERRORS_SHOWN = 200
FIGURES = ("variance", "scatter", "counts", "confusion")


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


def plot_scatter(pca: pd.DataFrame, seed: int, path: Path) -> Path:
    figure, axes = _figure()
    axes.set_title("First two principal components, coloured by label")
    if pca.empty:
        _message(axes, "no featurized images")
        return _save(figure, path)
    # Shuffle once (seeded), then keep the first rows of each label: a fixed random sample.
    sample = pca.sample(frac=1.0, random_state=seed).groupby("label").head(SCATTER_PER_LABEL)
    points = np.stack(sample["pca_features"].to_numpy())
    second = points[:, 1] if points.shape[1] > 1 else np.zeros(len(points))
    for label in sorted(sample["label"].unique()):
        mask = (sample["label"] == label).to_numpy()
        axes.scatter(points[mask, 0], second[mask], s=12, alpha=0.7, label=label)
    axes.set_xlabel("principal component 1")
    axes.set_ylabel("principal component 2" if points.shape[1] > 1 else "(k = 1: no second)")
    axes.grid(alpha=0.3)
    axes.legend(title="label", fontsize=8, loc="best", markerscale=1.5, ncol=2)
    return _save(figure, path)


def plot_counts(manifest: Manifest, path: Path) -> Path:
    per_label = manifest.counts.per_label if manifest.counts else {}
    labels = sorted(per_label)
    featurized = [per_label[label].featurized for label in labels]
    errors = [per_label[label].errors for label in labels]
    figure, axes = _figure()
    axes.set_title("Images per class")
    if not labels:
        _message(axes, "no counts: the run stopped before featurizing")
        return _save(figure, path)
    positions = np.arange(len(labels))
    axes.barh(positions, featurized, color="tab:blue", label="featurized")
    axes.barh(positions, errors, left=featurized, color="tab:red", label="errors")
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    axes.set_xlabel("images")
    axes.set_xlim(0, max(f + e for f, e in zip(featurized, errors, strict=True)) * 1.25)
    axes.legend(loc="lower right")  # in the headroom the limit above leaves
    axes.grid(axis="x", alpha=0.3)
    return _save(figure, path)


def plot_confusion(manifest: Manifest, path: Path) -> Path:
    probe = manifest.probe or ProbeSummary(status="skipped", reason="no probe in this run")
    figure, axes = _figure()
    axes.set_title("Linear probe: confusion matrix on the test images")
    if probe.status != SUCCEEDED or probe.confusion_matrix is None:
        _message(axes, f"probe skipped: {probe.reason}")
        return _save(figure, path)
    labels = probe.confusion_matrix["labels"]
    matrix = np.asarray(probe.confusion_matrix["matrix"])
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, label="test images")
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(ticks, labels, fontsize=8)
    axes.set_xlabel(f"predicted label (accuracy {probe.accuracy:.3f})")
    axes.set_ylabel("true label")
    if len(labels) <= 30:
        threshold = matrix.max() / 2
        for (row, column), value in np.ndenumerate(matrix):
            axes.text(column, row, str(value), ha="center", va="center", fontsize=8,
                      color="white" if value > threshold else "black")  # fmt: skip
    return _save(figure, path)


def _embedded(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _errors_section(errors: pd.DataFrame) -> str:
    if errors.empty:
        return "<h2>Errors</h2><p>None: every image was featurized.</p>"
    by_kind = errors["error_kind"].value_counts()
    rows = "".join(
        f"<tr><td>{html.escape(str(r.path))}</td><td>{html.escape(str(r.label))}</td>"
        f"<td>{html.escape(str(r.error_kind))}</td><td>{html.escape(str(r.error_message))}</td></tr>"
        for r in errors.sort_values("path").head(ERRORS_SHOWN).itertuples()
    )
    kinds = ", ".join(f"{kind}: {count}" for kind, count in by_kind.items())
    shown = f" (first {ERRORS_SHOWN} shown)" if len(errors) > ERRORS_SHOWN else ""
    return (
        f"<h2>Errors</h2><p>{len(errors)} images could not be used{shown}. {kinds}.</p>"
        "<table><tr><th>path</th><th>label</th><th>kind</th><th>message</th></tr>"
        f"{rows}</table>"
    )


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:900px;color:#222}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.2em .5em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}figcaption{color:#555}"""


def render_html(manifest: Manifest, figures: dict[str, Path], errors: pd.DataFrame) -> str:
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
        "images": f"{counts.files_seen} seen, {counts.featurized} featurized, "
        f"{counts.errors} errors"
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
    captions = {
        "variance": "Cumulative explained variance; the dashed line is the target, the dotted "
        "line the chosen k.",
        "scatter": f"Test and training images on the first two components (at most "
        f"{SCATTER_PER_LABEL} per label).",
        "counts": "Images per class: featurized, and errors.",
        "confusion": "The linear probe's confusion matrix: rows are true labels.",
    }
    facts_html = "".join(
        f"<dt>{html.escape(key)}</dt><dd>{html.escape(str(value))}</dd>"
        for key, value in facts.items()
    )
    figures_html = "".join(_embedded(figures[name], captions[name]) for name in FIGURES)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>fruits-pipeline report</title><style>{_STYLE}</style></head><body>"
        f"<h1>fruits-pipeline run report</h1><dl>{facts_html}</dl>{figures_html}"
        f"{_errors_section(errors)}</body></html>"
    )


def write_report(run: Path, out: Path, seed: int = 42) -> Path:
    """Draw the figures of the run in ``run`` into ``out``; return the path of report.html."""
    layout = RunLayout(str(run))
    manifest = Manifest.loads(Path(layout.manifest).read_text())
    pca_dir, errors_dir = Path(layout.pca), Path(layout.errors)
    pca = pd.read_parquet(pca_dir) if pca_dir.is_dir() else pd.DataFrame(columns=["label"])
    errors = pd.read_parquet(errors_dir) if errors_dir.is_dir() else pd.DataFrame()
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "variance": plot_variance(manifest, out / "variance.png"),
        "scatter": plot_scatter(pca, seed, out / "scatter.png"),
        "counts": plot_counts(manifest, out / "counts.png"),
        "confusion": plot_confusion(manifest, out / "confusion.png"),
    }
    report = out / "report.html"
    report.write_text(render_html(manifest, figures, errors), encoding="utf-8")
    return report


def main(config: ReportConfig) -> int:
    """``fruits-pipeline report``: write the report of ``config.run``; return the exit code."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("fruits-pipeline report needs matplotlib: pip install 'fruits-pipeline[report]'",
              file=sys.stderr)  # fmt: skip
        return int(ExitCode.FAILURE)
    with tempfile.TemporaryDirectory(prefix="fruits-report-") as scratch:
        run = fetch_run(config.run, Path(scratch))
        if not Path(RunLayout(str(run)).manifest).is_file():
            print(f"fruits-pipeline report: no manifest.json in {config.run}", file=sys.stderr)
            return int(ExitCode.NO_INPUT)
        default = Path("report") if is_s3_uri(config.run) else run / "report"
        report = write_report(run, Path(config.out) if config.out else default)
    print(f"report written: {report}")
    return int(ExitCode.OK)

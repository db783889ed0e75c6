"""The pieces of ``report.html`` that stay readable at 120+ classes: tables, an SVG heat map and
an interactive 2-D projection, as HTML strings with their script embedded (no network).

Every function takes plain data (the manifest's sections, pandas frames) and returns HTML; the
page around them is ``report.render_html``. Tables longer than ``FOLD_ROWS`` rows show the first
``FOLD_ROWS`` until "show all" is pressed; tables marked sortable sort on a header click.
"""

from __future__ import annotations

import colorsys
import html
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fruits_pipeline.manifest import ProbeSummary

FOLD_ROWS = 20  # rows shown before "show all": one screenful
TOP_ROWS = 15  # rows of the worst-recalled classes and most confused pairs
CELL_TEXT_MAX_CLASSES = 20  # above, heat map cells carry no number (hover shows it)
AXIS_LABELS_MAX_CLASSES = 40  # above, the heat map's axes carry no names
HEAT_MAP_PIXELS = 640


def palette(count: int) -> list[str]:
    """``count`` distinguishable colours as ``#rrggbb``: hues a golden angle apart, three
    lightness levels in turn, so neighbouring labels never share a colour."""
    colours = []
    for index in range(count):
        hue = (index * 0.381966) % 1.0
        lightness = (0.42, 0.58, 0.30)[index % 3]
        red, green, blue = colorsys.hls_to_rgb(hue, lightness, 0.75)
        colours.append(f"#{int(red * 255):02x}{int(green * 255):02x}{int(blue * 255):02x}")
    return colours


def _cell(value: Any) -> str:
    """A ``<td>``: numbers right-aligned with a sort key, text escaped."""
    if isinstance(value, float):
        return f'<td class="n" data-v="{value:.6f}">{value:.3f}</td>'
    if isinstance(value, (int, np.integer)):
        return f'<td class="n" data-v="{value}">{value:,}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], sortable: bool = False) -> str:
    """An HTML table; folded to ``FOLD_ROWS`` rows (a button shows all) when longer."""
    classes = ["sortable"] if sortable else []
    button = ""
    if len(rows) > FOLD_ROWS:
        classes.append("folded")
        button = f'<button class="unfold">show all {len(rows):,} rows</button>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(map(_cell, row)) + "</tr>" for row in rows)
    return (
        f'<table class="{" ".join(classes)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>{button}"
    )


def classifier_table(probe: ProbeSummary) -> str:
    """Each classifier's test accuracy, macro F1 and training seconds."""
    rows = [
        (s.name.replace("_", " "), s.accuracy, s.macro_f1, s.train_seconds)
        for s in probe.classifiers or []
    ]
    return table(["classifier", "test accuracy", "macro F1", "training s"], rows)


def confusion_frame(probe: ProbeSummary) -> tuple[list[str], np.ndarray]:
    """The logistic regression's labels and confusion matrix (rows true)."""
    matrix = probe.confusion_matrix or {"labels": [], "matrix": []}
    labels = list(matrix["labels"])
    return labels, np.asarray(matrix["matrix"], dtype=int).reshape(len(labels), len(labels))


def recall_rows(labels: list[str], matrix: np.ndarray) -> list[tuple[Any, ...]]:
    """Per class: label, test images, recall, most frequent wrong prediction (and count)."""
    rows = []
    for index, label in enumerate(labels):
        total = int(matrix[index].sum())
        if not total:
            continue
        wrong = matrix[index].copy()
        wrong[index] = 0
        worst = int(wrong.argmax())
        confused = f"{labels[worst]} ({wrong[worst]})" if wrong[worst] else ""
        rows.append((label, total, float(matrix[index, index] / total), confused))
    return rows


def confused_pairs(labels: list[str], matrix: np.ndarray) -> list[tuple[Any, ...]]:
    """The off-diagonal cells, largest first: true, predicted, count, share of the true class."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    true, predicted = np.nonzero(off)
    order = np.lexsort((predicted, true, -off[true, predicted]))
    totals = matrix.sum(axis=1)
    return [
        (labels[t], labels[p], int(off[t, p]), float(off[t, p] / totals[t]))
        for t, p in zip(true[order], predicted[order], strict=True)
    ]


def probe_tables(probe: ProbeSummary) -> str:
    """Worst-recalled classes, most confused pairs, and every class's recall (sortable)."""
    labels, matrix = confusion_frame(probe)
    recalls = recall_rows(labels, matrix)
    worst = sorted(recalls, key=lambda row: (row[2], row[0]))[:TOP_ROWS]
    pairs = confused_pairs(labels, matrix)
    recall_headers = ["class", "test images", "recall", "most often predicted as"]
    return (
        f"<h3>Worst-recalled classes (the {len(worst)} lowest)</h3>"
        + table(recall_headers, worst)
        + f"<h3>Most confused pairs ({len(pairs):,} pairs with a mistake)</h3>"
        + (
            table(["true", "predicted", "test images", "share of true class"], pairs[:TOP_ROWS])
            if pairs
            else "<p>No mistake: every test image was predicted right.</p>"
        )
        + "<h3>Recall of every class (click a header to sort)</h3>"
        + table(recall_headers, recalls, sortable=True)
    )


def heat_map(probe: ProbeSummary) -> str:
    """The confusion matrix as an SVG heat map: the colour is the share of the true class
    (square root scale, so a few mistakes show); hovering a cell names it. Numbers in the cells
    only up to ``CELL_TEXT_MAX_CLASSES`` classes, axis names up to ``AXIS_LABELS_MAX_CLASSES``."""
    labels, matrix = confusion_frame(probe)
    size = len(labels)
    if not size:
        return "<p>No confusion matrix.</p>"
    named = size <= AXIS_LABELS_MAX_CLASSES
    margin = 150 if named else 10
    cell = HEAT_MAP_PIXELS / size
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    parts = []
    for row, column in zip(*np.nonzero(matrix), strict=True):
        share = float(shares[row, column])
        x, y = margin + column * cell, margin + row * cell
        parts.append(
            f'<rect x="{x:.2f}" y="{y:.2f}" width="{cell:.2f}" height="{cell:.2f}" '
            f'fill="rgb(8,48,107)" fill-opacity="{0.08 + 0.92 * share**0.5:.3f}">'
            f"<title>{html.escape(labels[row])} -> {html.escape(labels[column])}: "
            f"{matrix[row, column]} ({share:.0%} of the true class)</title></rect>"
        )
        if size <= CELL_TEXT_MAX_CLASSES:
            colour = "white" if share > 0.5 else "black"
            parts.append(
                f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2:.1f}" fill="{colour}" '
                f'class="cell">{matrix[row, column]}</text>'
            )
    if named:
        for index, label in enumerate(labels):
            middle = margin + (index + 0.5) * cell
            name = html.escape(label)
            parts.append(f'<text x="{margin - 4}" y="{middle:.1f}" class="row">{name}</text>')
            parts.append(
                f'<text transform="translate({middle:.1f},{margin - 4}) rotate(-60)" '
                f'class="col">{name}</text>'
            )
    side = margin + HEAT_MAP_PIXELS + 2
    return (
        f'<svg class="heat" viewBox="0 0 {side} {side}" width="{side}" height="{side}">'
        f'<rect x="{margin}" y="{margin}" width="{HEAT_MAP_PIXELS}" height="{HEAT_MAP_PIXELS}" '
        f'fill="#fafafa" stroke="#ccc"/>{"".join(parts)}</svg>'
    )


def projection_data(
    pca: pd.DataFrame, seed: int, per_label: int, prefix: str = ""
) -> dict[str, Any]:
    """The points of the interactive projection: at most ``per_label`` per label (a seeded
    sample), their first two components, label index and path (``prefix`` cut off).

    Returns ``{"labels", "colours", "x", "y", "label", "path", "shown", "total"}`` as plain
    lists, ready for ``json.dumps``.
    """
    labels = sorted(pca["label"].unique()) if not pca.empty else []
    sample = pca.sample(frac=1.0, random_state=seed).groupby("label").head(per_label)
    points = np.stack(sample["pca_features"].to_numpy()) if len(sample) else np.zeros((0, 2))
    second = points[:, 1] if points.shape[1] > 1 else np.zeros(len(points))
    index = {label: position for position, label in enumerate(labels)}
    paths = [str(path).removeprefix(prefix) for path in sample["path"]]
    return {
        "labels": labels,
        "colours": palette(len(labels)),
        "x": np.round(points[:, 0], 4).tolist() if len(points) else [],
        "y": np.round(second, 4).tolist(),
        "label": [index[label] for label in sample["label"]],
        "path": paths,
        "shown": len(sample),
        "total": len(pca),
    }


def projection(data: dict[str, Any]) -> str:
    """The interactive 2-D projection: a canvas, a class search box and the data as JSON.

    Hovering a point shows its label and path; typing or picking a class (or clicking a point)
    highlights that class and greys the others; ``#class=NAME`` in the address does the same on
    load. The script is ``PROJECTION_SCRIPT``, embedded, so the page works offline.
    """
    options = "".join(f'<option value="{html.escape(label)}">' for label in data["labels"])
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return (
        '<div class="projection"><label>class <input id="pick" list="classes" '
        'placeholder="type or pick a class" size="32"></label> '
        '<button id="clear">show all classes</button> <span id="picked"></span>'
        f'<datalist id="classes">{options}</datalist>'
        '<canvas id="scatter" width="860" height="560"></canvas><div id="tip"></div></div>'
        f'<script type="application/json" id="points">{payload}</script>'
    )

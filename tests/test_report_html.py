"""report_html.py and compare.py: the report's tables, heat map and projection data, on made-up
probes of 3 and 120 classes (no Spark)."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fruits_pipeline.compare import comparison_rows, comparison_section, recall_differences
from fruits_pipeline.manifest import ClassifierScore, LabelCounts, ProbeSummary
from fruits_pipeline.report_html import (
    FOLD_ROWS,
    confused_pairs,
    heat_map,
    palette,
    probe_tables,
    projection,
    projection_data,
    recall_rows,
    table,
)
from tests.test_summary import CLASS_NAMES, succeeded

pytestmark = pytest.mark.unit


def probe_of(labels: list[str], matrix: np.ndarray) -> ProbeSummary:
    return ProbeSummary(
        status="succeeded",
        accuracy=float(np.trace(matrix) / matrix.sum()),
        macro_f1=0.5,
        confusion_matrix={"labels": labels, "matrix": matrix.tolist()},
        classifiers=[ClassifierScore("logistic_regression", 0.9, 0.8, 1.0)],
    )


def big_probe() -> ProbeSummary:
    size = len(CLASS_NAMES)
    matrix = np.eye(size, dtype=int) * 8
    matrix[5, 5], matrix[5, 9] = 2, 6  # class 5 mostly taken for class 9
    matrix[7, 7], matrix[7, 3] = 7, 1
    return probe_of(CLASS_NAMES, matrix)


def test_confused_pairs_are_largest_first_with_the_share_of_the_true_class() -> None:
    labels = ["a", "b", "c"]
    matrix = np.array([[5, 2, 0], [1, 4, 3], [0, 0, 6]])
    assert confused_pairs(labels, matrix) == [
        ("b", "c", 3, 3 / 8),
        ("a", "b", 2, 2 / 7),
        ("b", "a", 1, 1 / 8),
    ]
    assert recall_rows(labels, matrix)[1] == ("b", 8, 0.5, "c (3)")
    assert recall_rows(labels, matrix)[2] == ("c", 6, 1.0, "")


def test_long_tables_fold_after_a_screenful_and_short_ones_do_not() -> None:
    rows = [(f"class {i}", i) for i in range(FOLD_ROWS + 5)]
    folded = table(["class", "n"], rows, sortable=True)
    assert 'class="sortable folded"' in folded and f"show all {FOLD_ROWS + 5} rows" in folded
    assert folded.count("<tr>") == FOLD_ROWS + 5 + 1  # every row is there, CSS hides the rest
    short = table(["class", "n"], rows[:3])
    assert "folded" not in short and "show all" not in short


def test_probe_tables_at_120_classes_lead_with_the_worst_class_and_pair() -> None:
    text = probe_tables(big_probe())
    worst = re.search(r"Worst-recalled.*?<tbody><tr>(.*?)</tr>", text).group(1)
    assert CLASS_NAMES[5] in worst and "0.250" in worst and f"{CLASS_NAMES[9]} (6)" in worst
    pairs = re.search(r"Most confused pairs \(2 pairs.*?<tbody><tr>(.*?)</tr>", text).group(1)
    assert f"<td>{CLASS_NAMES[5]}</td><td>{CLASS_NAMES[9]}</td>" in pairs
    assert text.count('class="sortable folded"') == 1  # the 120-row recall table


def test_heat_map_writes_numbers_only_for_a_few_classes() -> None:
    many = heat_map(big_probe())
    assert 'class="cell"' not in many and 'class="row"' not in many
    assert many.count("<rect") == 1 + 120 + 2  # background, the diagonal, two mistakes
    assert f"{CLASS_NAMES[5]} -> {CLASS_NAMES[9]}: 6 (75% of the true class)" in many
    few = heat_map(probe_of(["a", "b"], np.array([[3, 1], [0, 4]])))
    assert few.count('class="cell"') == 3 and few.count('class="row"') == 2


def test_palette_gives_distinct_colours_for_131_classes() -> None:
    colours = palette(131)
    assert len(set(colours)) == 131 and all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)


def test_projection_data_samples_per_label_and_strips_the_input_prefix() -> None:
    rows = [
        (f"file:/in/Training/{label}/{i}.jpg", label, [float(i), float(-i), 0.5])
        for label in ("kiwi", "fig")
        for i in range(30 if label == "kiwi" else 5)
    ]
    pca = pd.DataFrame(rows, columns=["path", "label", "pca_features"])
    data = projection_data(pca, seed=1, per_label=10, prefix="file:/in/")
    assert data["labels"] == ["fig", "kiwi"] and (data["shown"], data["total"]) == (15, 35)
    assert sorted(data["label"]).count(1) == 10 and data["path"][0].startswith("Training/")
    assert projection_data(pca, seed=1, per_label=10) == projection_data(pca, 1, 10)
    page = projection({**data, "path": ["</script><b>x"] * 15})
    assert "</script><b>" not in page.split('id="points">')[1].split("</script>")[0]


def test_compare_puts_both_runs_classifiers_side_by_side() -> None:
    run = succeeded({"a": LabelCounts(10, 10, 0)}, {}).with_(config={"extractor": "mobilenet_v2"})
    other_probe = ProbeSummary(
        status="succeeded",
        accuracy=0.6,
        macro_f1=0.55,
        per_class_recall={"a": 0.5},
        classifiers=[ClassifierScore("logistic_regression", 0.6, 0.55, 2.0)],
    )
    other = run.with_(config={"extractor": "orb"}, probe=other_probe, output="file:/runs/orb")
    run = run.with_(probe=replace(run.probe, per_class_recall={"a": 1.0}))
    rows = {name: (ours, theirs) for name, ours, theirs in comparison_rows(run, other)}
    assert rows["extractor"] == ("mobilenet_v2", "orb")
    assert rows["logistic regression: accuracy"] == (0.9871, 0.6)
    assert rows["random forest: accuracy"] == (0.93, "")
    assert recall_differences(run, other) == [("a", 1.0, 0.5, 0.5)]
    assert "Compared with file:/runs/orb" in comparison_section(run, other)

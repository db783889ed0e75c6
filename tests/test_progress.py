"""progress.py: stages numbered by their place in the job's list, timed under their keys."""

from __future__ import annotations

import io

import pytest

from fruits_pipeline.progress import Progress
from fruits_pipeline.stages import STAGES, Stage

pytestmark = pytest.mark.unit


def test_stages_are_numbered_by_the_stage_list_and_timed_by_key() -> None:
    stream = io.StringIO()
    progress = Progress(stream, STAGES)
    with progress.stage(Stage.FEATURIZE.key, Stage.FEATURIZE.label) as info:
        info["images"] = 10
    with progress.stage(Stage.WORKERS.key, Stage.WORKERS.label) as info:
        info["detail"] = "2 tasks"
    lines = stream.getvalue().splitlines()
    total = len(STAGES)
    featurize, workers = STAGES.index("featurize") + 1, STAGES.index("workers") + 1
    assert (featurize, workers, total) == (6, 5, 11)
    assert lines[0].endswith(f"({featurize}/{total}) featurize ...")
    assert f"({featurize}/{total}) featurize done in" in lines[1] and "10 images" in lines[1]
    assert lines[3].endswith("(2 tasks)") and f"({workers}/{total}) start workers done" in lines[3]
    assert list(progress.timings) == ["featurize", "workers"]


def test_stage_keys_and_labels_are_distinct_and_keys_are_identifiers() -> None:
    assert len(STAGES) == len(set(STAGES)) == len({s.label for s in Stage}) == 11
    assert all(key.isidentifier() for key in STAGES)
    assert STAGES[0] == Stage.RESIDENCY.key == "residency"

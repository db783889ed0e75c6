"""progress.py: stages numbered by their place in the job's list, timings recorded."""

from __future__ import annotations

import io

import pytest

from fruits_pipeline.job import STAGES, Stage
from fruits_pipeline.progress import Progress

pytestmark = pytest.mark.unit


def test_stages_are_numbered_by_the_stage_list_and_timed() -> None:
    stream = io.StringIO()
    progress = Progress(stream, STAGES)
    with progress.stage(Stage.FEATURIZE.value) as info:
        info["images"] = 10
    with progress.stage(Stage.WORKERS.value) as info:
        info["detail"] = "2 tasks"
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("(5/10) featurize ...")
    assert "(5/10) featurize done in" in lines[1] and "10 images" in lines[1]
    assert lines[3].endswith("(2 tasks)") and "(4/10) start workers done" in lines[3]
    assert list(progress.timings) == ["featurize", "start workers"]
    assert len(STAGES) == len(set(STAGES)) == 10

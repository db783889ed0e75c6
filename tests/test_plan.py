"""plan.py: a run's shape, and what follows from it, decided once from its config."""

from __future__ import annotations

import pytest

from fruits_pipeline.config import ORB, JobConfig
from fruits_pipeline.errors import UsageError
from fruits_pipeline.layout import DATA_PARTS, MODEL
from fruits_pipeline.plan import Shape, plan_run

pytestmark = pytest.mark.unit


def config(**changes: object) -> JobConfig:
    return JobConfig(input_uri="file:/in", output_uri="file:/out", **changes)  # type: ignore[arg-type]


def test_a_full_run_fits_probes_and_writes_every_output() -> None:
    plan = plan_run(config())
    assert plan.shape is Shape.FULL and plan.fits and not plan.incremental
    assert (plan.reuse_from, plan.model_from, plan.probe_skipped) == (None, None, None)
    assert plan.outputs == DATA_PARTS
    assert plan.layout.root == "file:/out" and plan.k_rule == "variance"


def test_an_incremental_run_reuses_and_still_fits() -> None:
    plan = plan_run(config(incremental_from="file:/before", k=3, probe=False))
    assert plan.shape is Shape.INCREMENTAL and plan.incremental and plan.fits
    assert plan.reuse_from == "file:/before"
    assert plan.probe_skipped == "--no-probe" and plan.k_rule == "fixed (--k)"


def test_a_projection_loads_the_model_writes_no_model_and_skips_the_probe() -> None:
    plan = plan_run(config(model_run="file:/fitted"))
    assert plan.shape is Shape.PROJECT and not plan.fits
    assert plan.model_from == "file:/fitted" and plan.reuse_from is None
    assert MODEL not in plan.outputs and len(plan.outputs) == len(DATA_PARTS) - 1
    assert plan.probe_skipped is not None and "project" in plan.probe_skipped
    assert plan.k_rule == "from --model file:/fitted"


def test_a_collection_of_orb_features_is_refused_before_any_work() -> None:
    with pytest.raises(UsageError, match="--table keeps MobileNetV2 features"):
        plan_run(config(table="file:/collection", extractor=ORB))
    assert plan_run(config(table="file:/collection")).shape is Shape.COLLECTION


def test_a_collection_run_does_not_also_build_on_a_previous_run() -> None:
    with pytest.raises(UsageError, match="--table and --incremental-from exclude each other"):
        plan_run(config(table="file:/collection", incremental_from="file:/before"))

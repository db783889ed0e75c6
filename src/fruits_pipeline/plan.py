"""What a run will do, decided once from its ``JobConfig`` before anything runs.

Three shapes share one sequence of stages (``stages.Stage``); the plan says how each stage
behaves, so no stage asks the config which shape it is in:

- ``full``: every listed image runs the model; scaler + PCA are fitted and saved as ``model/``.
- ``incremental`` (``--incremental-from RUN``): only new and changed images run the model, the
  rest reuse RUN's rows; scaler + PCA are refitted on all.
- ``project`` (``fruits-pipeline project --model RUN``): every image runs the model and is
  projected with RUN's scaler + PCA; nothing is fitted, no ``model/`` and no probe.
- ``collection`` (``--table TABLE``): the collection's Iceberg tables are brought up to date
  (``collection.py``); ``features/`` and ``pca/`` hold the photos the run projects (all of them
  after a refit, else the new ones), ``errors/`` the collection's; no inventory, no probe.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from fruits_pipeline.config import ORB, JobConfig
from fruits_pipeline.errors import UsageError
from fruits_pipeline.layout import DATA_PARTS, INVENTORY, MODEL, RunLayout


class Shape(Enum):
    """The three kinds of run."""

    FULL = "full"
    INCREMENTAL = "incremental"
    PROJECT = "project"
    COLLECTION = "collection"


# The data parts a shape does not write.
_NOT_WRITTEN = {Shape.PROJECT: (MODEL,), Shape.COLLECTION: (INVENTORY,)}


@dataclass(frozen=True)
class RunPlan:
    """A run's shape and what follows from it.

    ``reuse_from``: the run whose features unchanged images reuse (``incremental`` only);
    ``model_from``: the run whose fitted reduction is loaded (``project`` only; else the
    reduction is fitted here and saved under ``model/``); ``probe_skipped``: why the linear probe
    does not run, or None when it does; ``outputs``: the data parts the manifest lists;
    ``k_rule``: how k is chosen, as the manifest words it.
    """

    shape: Shape
    layout: RunLayout
    reuse_from: str | None
    model_from: str | None
    probe_skipped: str | None
    outputs: tuple[str, ...]
    k_rule: str

    @property
    def fits(self) -> bool:
        """Whether this run fits scaler + PCA (and writes ``model/``)."""
        return self.model_from is None

    @property
    def incremental(self) -> bool:
        return self.shape is Shape.INCREMENTAL


def plan_run(config: JobConfig) -> RunPlan:
    """The plan for ``config``. ``project`` takes precedence: the CLI never sets both
    ``model_run`` and ``incremental_from``.

    Raises:
        UsageError: ``--table`` with ``--extractor orb`` (a collection holds one kind of
            features, MobileNetV2's, whose moments and drift it keeps), or with
            ``--incremental-from`` (the table already is what the run builds on).
    """
    if config.model_run is not None:
        shape = Shape.PROJECT
    elif config.table is not None:
        if config.extractor == ORB:  # a collection's moments and drift are MobileNetV2's
            raise UsageError("--table keeps MobileNetV2 features: run --extractor orb without it")
        if config.incremental_from is not None:  # the table is what a run with it builds on
            raise UsageError("--table and --incremental-from exclude each other: use one")
        shape = Shape.COLLECTION
    elif config.incremental_from is not None:
        shape = Shape.INCREMENTAL
    else:
        shape = Shape.FULL
    probe_skipped = None
    if shape is Shape.PROJECT:
        probe_skipped = "project: the probe belongs to the run that fitted the model"
    elif shape is Shape.COLLECTION:
        probe_skipped = "--table: pca/ may hold the new photos only"
    elif not config.probe:
        probe_skipped = "--no-probe"
    if shape is Shape.PROJECT:
        k_rule = f"from --model {config.model_run}"
    else:
        k_rule = "fixed (--k)" if config.k is not None else "variance"
    return RunPlan(
        shape=shape,
        layout=RunLayout(config.output_uri),
        reuse_from=config.incremental_from if shape is Shape.INCREMENTAL else None,
        model_from=config.model_run,
        probe_skipped=probe_skipped,
        outputs=tuple(p for p in DATA_PARTS if p not in _NOT_WRITTEN.get(shape, ())),
        k_rule=k_rule,
    )

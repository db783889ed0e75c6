"""Incremental runs: only new and changed images run the model; the rest is reused.

A file is unchanged when its ``(path, length, modificationTime)`` is in the previous run's
``inventory/``: its row in the previous ``features/`` (or ``errors/``: a file that failed and
did not change fails again, without the model) is carried over. New and changed files are
featurized, and only their bytes are read; files that are gone are dropped (and counted as
removed). Every step is a join in Spark: nothing per file reaches the driver's Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame

from fruits_pipeline.accounting import Listing
from fruits_pipeline.runs import PreviousRun
from fruits_pipeline.schema import FILE_IDENTITY, LABEL, PATH


@dataclass(frozen=True)
class Increment:
    """What an incremental run does with each file (all lazy DataFrames).

    ``to_featurize``: the listing's images (``path, label, split, content``) that are new or
    changed; ``unchanged``: ``path`` of the files whose previous outcome is reused;
    ``reused_features`` / ``reused_errors``: those previous rows, as the previous run wrote
    them; ``removed``: ``path, label`` of the previous run's files that are no longer listed.
    """

    to_featurize: DataFrame
    unchanged: DataFrame
    reused_features: DataFrame
    reused_errors: DataFrame
    removed: DataFrame


def plan_increment(
    listing: Listing, previous: PreviousRun, read_files: Callable[[DataFrame], DataFrame]
) -> Increment:
    """Split ``listing`` into reused and to-featurize files against ``previous``.

    Args:
        listing: the current input (``accounting.list_input``).
        previous: the run to reuse (``runs.load_previous_run``).
        read_files: ``path`` frame -> the images of exactly those files, shaped like
            ``listing.images`` (the job passes ``reading.read_image_files`` then
            ``reading.to_images``). Given the new and changed files only: filtering
            ``listing.images`` instead would read every file's bytes before the join.

    Pitfall: matching is on the exact modification time the file system reports; a file
    copied again with the same bytes gets a new time and is featurized again (never wrong,
    only slower).
    """
    identity = list(FILE_IDENTITY)
    unchanged = listing.scanned.join(previous.inventory, identity, "left_semi").select(PATH)
    changed = listing.scanned.join(previous.inventory, identity, "left_anti").select(PATH)
    before = previous.features.select(PATH, LABEL).unionByName(previous.errors.select(PATH, LABEL))
    return Increment(
        to_featurize=read_files(changed),
        unchanged=unchanged,
        reused_features=previous.features.join(unchanged, PATH, "left_semi"),
        reused_errors=previous.errors.join(unchanged, PATH, "left_semi"),
        removed=before.join(listing.files, PATH, "left_anti"),
    )

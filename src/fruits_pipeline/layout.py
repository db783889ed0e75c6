"""Where a run's parts live under its ``--output``: the one place that names them.

``RunLayout(output_uri)`` gives each part's URI; ``OUTPUT_PARTS`` is everything a run may write
there, which is exactly what ``--overwrite`` removes (anything else in the folder is left).
"""

from __future__ import annotations

from dataclasses import dataclass

MANIFEST = "manifest.json"
FEATURES = "features"
ERRORS = "errors"
PCA = "pca"
MODEL = "model"
INVENTORY = "inventory"
STAGING = "staging"

# The Parquet and model outputs a run lists in its manifest (``project`` writes no model/).
DATA_PARTS = (FEATURES, ERRORS, PCA, MODEL, INVENTORY)
# Everything a run writes, the manifest first: clearing in this order leaves no stale success.
OUTPUT_PARTS = (MANIFEST, *DATA_PARTS, STAGING)


def child_uri(base: str, name: str) -> str:
    """``base`` joined with ``name`` by exactly one ``/`` (``s3://b/run/`` + ``pca``)."""
    return base.rstrip("/") + "/" + name


@dataclass(frozen=True)
class RunLayout:
    """A run's folder (``s3://``, ``file:`` or ``hdfs://`` URI) and the URIs of its parts.

    ``features``, ``errors``, ``pca``, ``inventory``: Parquet folders; ``model``: the fitted
    ``PipelineModel``; ``staging``: the featurize stage's Parquet, deleted at the end of a run;
    ``manifest``: ``manifest.json``, written last.
    """

    root: str

    def part(self, name: str) -> str:
        """The URI of part ``name`` (one of ``OUTPUT_PARTS``)."""
        if name not in OUTPUT_PARTS:
            raise ValueError(f"{name!r} is not a part of a run; expected one of {OUTPUT_PARTS}")
        return child_uri(self.root, name)

    @property
    def manifest(self) -> str:
        return self.part(MANIFEST)

    @property
    def features(self) -> str:
        return self.part(FEATURES)

    @property
    def errors(self) -> str:
        return self.part(ERRORS)

    @property
    def pca(self) -> str:
        return self.part(PCA)

    @property
    def model(self) -> str:
        return self.part(MODEL)

    @property
    def inventory(self) -> str:
        return self.part(INVENTORY)

    @property
    def staging(self) -> str:
        return self.part(STAGING)

"""A fake model pass for the collection's tests: featurizes a chunk of paths on the driver,
deterministically per path, and remembers every path it ran on."""

from __future__ import annotations

import zlib
from datetime import datetime

import numpy as np
from pyspark.sql import DataFrame, SparkSession

from fruits_pipeline.table import Provenance, with_provenance

PROVENANCE = Provenance("ab" * 32, "openvino", "fp32", "mobilenet_v2", 224)
WHEN = datetime(2026, 1, 1)
IDENTITY_SCHEMA = "path string, length long, modificationTime timestamp"


def vector_of(path: str, length: int) -> np.ndarray:
    """The fake features of a file: a function of its path and length (its content)."""
    rng = np.random.default_rng(zlib.crc32(f"{path}:{length}".encode()))
    return rng.uniform(0, 2, size=1280).astype(np.float32)


class FakeModel:
    """A ``commits.FeaturizeChunk``: paths in ``bad`` become errors; fails on chunk number
    ``fail_at`` (from 0) when given, before featurizing it."""

    def __init__(
        self,
        spark: SparkSession,
        identities: DataFrame,
        run_id: str = "run-1",
        bad: frozenset[str] = frozenset(),
        fail_at: int | None = None,
    ) -> None:
        self.spark, self.run_id, self.bad, self.fail_at = spark, run_id, bad, fail_at
        self.lengths = {row.path: row.length for row in identities.collect()}
        self.identities = identities
        self.ran: list[str] = []
        self.calls = 0

    def __call__(self, paths: DataFrame) -> tuple[DataFrame, DataFrame]:
        if self.calls == self.fail_at:
            raise RuntimeError("the driver was lost")
        self.calls += 1
        names = sorted(row.path for row in paths.collect())
        self.ran.extend(names)
        good = [
            (p, "apple", "Training", vector_of(p, self.lengths[p]).tolist())
            for p in names
            if p not in self.bad
        ]
        bad = [(p, "apple", "Training", "corrupt", "fake") for p in names if p in self.bad]
        rows = with_provenance(self.identities, PROVENANCE, self.run_id)
        features = self.spark.createDataFrame(
            good, "path string, label string, split string, features array<float>"
        )
        errors = self.spark.createDataFrame(
            bad, "path string, label string, split string, error_kind string, error_message string"
        )
        return features.transform(rows), errors.transform(rows)

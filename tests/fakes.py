"""A deterministic stand-in for MobileNetV2, for tests that run the whole job in-process to check
its plumbing: no weights file, no TensorFlow, no OpenVINO conversion.

``FAKE_MODEL`` is an ``engines.ModelSource``: pass it as ``run_job(..., model=FAKE_MODEL)``.
Its features are a fixed linear function of each image's colours (a 4 x 4 grid of mean RGB
values, projected to 1280 floats by a seeded random matrix), so photos of different fruits get
different features: PCA finds structure and a linear probe separates the labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from pyspark import Broadcast

from fruits_pipeline.config import FEATURE_DIM, JobConfig
from fruits_pipeline.engines import Broadcaster, PredictorFactory
from fruits_pipeline.model import LoadedWeights, Predictor

GRID = 4
STATISTICS = GRID * GRID * 3
FAKE_SHA256 = hashlib.sha256(b"fruits-pipeline fake model").hexdigest()


def fake_sha256(weights: str) -> str:
    """The fake's "weights file" hash: ``FAKE_SHA256`` for the default weights, else one per
    name, so that runs naming other weights disagree as runs with other files would."""
    if weights == JobConfig.weights:
        return FAKE_SHA256
    return hashlib.sha256(f"fruits-pipeline fake model {weights}".encode()).hexdigest()


def projection(seed: int = 0) -> np.ndarray:
    """The fixed ``(48, 1280)`` float32 matrix from colour statistics to features."""
    return np.random.default_rng(seed).normal(size=(STATISTICS, FEATURE_DIM)).astype(np.float32)


def fake_features(batch: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``uint8 (n, s, s, 3)`` pixels -> ``float32 (n, 1280)``: grid means times ``matrix``."""
    count, side = batch.shape[0], batch.shape[1] // GRID * GRID
    cells = batch[:, :side, :side, :].reshape(count, GRID, side // GRID, GRID, side // GRID, 3)
    means = cells.mean(axis=(2, 4)).reshape(count, STATISTICS)
    return (means @ matrix).astype(np.float32)


@dataclass(frozen=True)
class FakePredictorFactory:
    """Worker side: the broadcast matrix in, ``fake_features`` out (picklable, like the real)."""

    matrix: Broadcast[np.ndarray]

    def __call__(self) -> Predictor:
        matrix = self.matrix.value
        return lambda batch: fake_features(batch, matrix)


@dataclass(frozen=True)
class FakeModelSource:
    """Loads no file: the weights are named as configured, with ``fake_sha256`` and no arrays."""

    def load_weights(self, config: JobConfig, region: str | None) -> LoadedWeights:
        return LoadedWeights(source=config.weights, sha256=fake_sha256(config.weights), arrays=[])

    def predictor_factory(
        self, config: JobConfig, weights: LoadedWeights, broadcast: Broadcaster
    ) -> PredictorFactory:
        return FakePredictorFactory(broadcast(projection()))


FAKE_MODEL = FakeModelSource()

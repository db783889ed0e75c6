"""Additive moments (reduction.FeatureMoments.combined / without) and the fit from moments, and
drift.py's figures: NumPy only."""

from __future__ import annotations

import numpy as np
import pytest

from fruits_pipeline.drift import (
    MEAN_SHIFT_THRESHOLD,
    Refit,
    fit_quality,
    measure_drift,
    should_refit,
)
from fruits_pipeline.reduction import (
    FeatureMoments,
    Reduction,
    partition_moments,
    reduction_from_moments,
)

pytestmark = pytest.mark.unit

DIM = 1280  # the fit from moments is tested at the real width ...
SMALL = 256  # ... the rest at a narrower one (each 1280 x 1280 eigendecomposition takes ~1 s)


def features(rows: int, seed: int, shift: float = 0.0, dim: int = DIM) -> np.ndarray:
    """ReLU-like rows with a decaying spectrum (distinct leading eigenvalues, as real features
    have) and 40 features that are always 0, as MobileNetV2's dead channels are."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(dim, 60)))[0]
    latent = rng.normal(size=(rows, 60)) * (0.9 ** np.arange(60))
    matrix = np.maximum(latent @ basis.T * 3 + 0.4 + shift, 0.0).astype(np.float32)
    matrix[:, :40] = 0.0
    return matrix.astype(np.float64)


def moments_in_parts(matrix: np.ndarray, parts: int) -> FeatureMoments:
    total = FeatureMoments.empty(matrix.shape[1])
    for part in np.array_split(matrix, parts):
        total = total.combined(partition_moments(part))
    return total


def assert_same_reduction(ours: Reduction, scratch: Reduction) -> None:
    assert ours.k == scratch.k
    np.testing.assert_allclose(ours.mean, scratch.mean, atol=1e-5)
    np.testing.assert_allclose(ours.std, scratch.std, atol=1e-5)
    np.testing.assert_allclose(ours.explained, scratch.explained, atol=1e-5)
    signs = np.sign(np.sum(ours.components * scratch.components, axis=0))
    np.testing.assert_allclose(ours.components * signs, scratch.components, atol=1e-5)
    assert ours.achieved_variance == pytest.approx(scratch.achieved_variance, abs=1e-5)


@pytest.mark.spark  # four 1280 x 1280 eigendecompositions: seconds
def test_adding_new_and_removing_gone_rows_equals_a_fit_from_scratch() -> None:
    old, new = features(400, seed=1), features(120, seed=2)
    gone, changed = old[:50], old[50:80]
    changed_again = features(30, seed=3)
    kept = old[80:]
    moments = (
        moments_in_parts(old, 3)
        .without(moments_in_parts(gone, 2))
        .without(partition_moments(changed))
        .combined(moments_in_parts(np.vstack([new, changed_again]), 4))
    )
    current = np.vstack([kept, new, changed_again])
    scratch = partition_moments(current)
    assert moments.rows == len(current)
    np.testing.assert_allclose(moments.scatter, scratch.scatter, atol=1e-8 * scratch.scatter.max())
    assert_same_reduction(
        reduction_from_moments(moments, 0.95), reduction_from_moments(scratch, 0.95)
    )


def test_a_fixed_k_from_moments_equals_one_from_scratch() -> None:
    old, new = features(200, seed=12, dim=SMALL), features(60, seed=13, dim=SMALL)
    moments = partition_moments(old).without(partition_moments(old[:40]))
    moments = moments.combined(partition_moments(new))
    scratch = partition_moments(np.vstack([old[40:], new]))
    assert_same_reduction(
        reduction_from_moments(moments, 0.95, k=7), reduction_from_moments(scratch, 0.95, k=7)
    )


def test_a_feature_left_constant_has_exactly_zero_scatter() -> None:
    matrix = features(50, seed=4, dim=SMALL)
    matrix[:, 100] = 0.1
    matrix[:10, 200] = 5.0  # varies only in the rows that go
    matrix[10:, 200] = 0.1
    remaining = partition_moments(matrix).without(partition_moments(matrix[:10]))
    assert remaining.scatter[100].max() == 0.0 and remaining.scatter[:, 200].max() == 0.0
    assert remaining.std[100] == 0.0 and remaining.std[200] == 0.0
    np.testing.assert_allclose(remaining.mean[200], 0.1, rtol=1e-12)


def test_removing_everything_or_too_much() -> None:
    matrix = features(5, seed=5, dim=SMALL)
    assert partition_moments(matrix).without(partition_moments(matrix)).rows == 0
    moments = partition_moments(matrix)
    assert moments.without(FeatureMoments.empty(SMALL)) is moments
    with pytest.raises(ValueError, match="cannot remove 6 rows from moments of 5"):
        moments.without(partition_moments(features(6, seed=6, dim=SMALL)))


def test_fit_quality_of_the_fitted_rows_is_the_achieved_variance() -> None:
    fitted = partition_moments(features(300, seed=7, dim=SMALL))
    reduction = reduction_from_moments(fitted, 0.9)
    quality = fit_quality(reduction, fitted)
    assert quality.rows == 300
    assert quality.retained_variance == pytest.approx(reduction.achieved_variance, abs=1e-9)
    assert quality.mean_shift == pytest.approx(0.0, abs=1e-9)
    # The error is what the dropped components carry, per feature, in standardised units.
    standardised = (features(300, seed=7, dim=SMALL) - reduction.mean) * np.divide(
        1.0, reduction.std, out=np.zeros(SMALL), where=reduction.std > 0
    )
    rebuilt = standardised @ reduction.components @ reduction.components.T
    assert quality.reconstruction_error == pytest.approx(
        np.mean((standardised - rebuilt) ** 2), rel=1e-6
    )
    assert fit_quality(reduction, FeatureMoments.empty(SMALL)).retained_variance is None


def test_photos_like_the_fitted_ones_do_not_drift_and_shifted_ones_do() -> None:
    fitted = partition_moments(features(400, seed=8, dim=SMALL))
    reduction = reduction_from_moments(fitted, 0.95)
    alike = measure_drift(reduction, fitted, partition_moments(features(100, seed=9, dim=SMALL)))
    assert abs(alike.retained_drop) < 0.05 and alike.new.mean_shift < 0.2
    assert not alike.drifted
    assert not should_refit(Refit.AUTO, alike) and should_refit(Refit.ALWAYS, alike)
    other = features(100, seed=10, shift=2.0, dim=SMALL)
    other[:, 40:80] = np.random.default_rng(11).uniform(0, 8, size=(100, 40))  # new directions
    shifted = measure_drift(reduction, fitted, partition_moments(other))
    assert shifted.new.mean_shift > MEAN_SHIFT_THRESHOLD and shifted.retained_drop > 0.05
    assert shifted.drifted and should_refit(Refit.AUTO, shifted)
    assert not should_refit(Refit.NEVER, shifted)


def test_without_a_model_every_policy_fits() -> None:
    assert all(should_refit(policy, None) for policy in Refit)

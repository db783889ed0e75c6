"""Drift: how well the current scaler + PCA explains new photos, and whether to refit.

Everything here is computed from ``FeatureMoments`` (count, mean, scatter), never from rows:
a run already has the moments of its new photos (they update the collection's), so measuring
drift costs a few 1280 x 1280 products on the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from fruits_pipeline.reduction import FeatureMoments, Reduction, inverse_std

# --refit auto refits when the new photos keep this much less of their variance (a share, so
# 0.05 is five points) in the model's k components than the photos it was fitted on did ...
RETAINED_DROP_THRESHOLD = 0.05
# ... or when their mean has moved this far from the model's, as the root mean square over
# features in the scaler's units (standard deviations of the fitted photos).
MEAN_SHIFT_THRESHOLD = 0.5


class Refit(Enum):
    """``--refit``: when a run with a table refits scaler + PCA on the whole collection."""

    AUTO = "auto"  # when drift passes a threshold above, or there is no model yet
    ALWAYS = "always"
    NEVER = "never"  # except on a table with no model yet: there is nothing to project with


@dataclass(frozen=True)
class FitQuality:
    """How well a ``Reduction`` explains a set of photos, in its standardised units.

    ``retained_variance``: share of the photos' sum of squares about the model's mean that the
    k components keep (the model's own ``achieved_variance`` for the photos it was fitted on).
    ``reconstruction_error``: mean squared error per feature of the photos rebuilt from their
    k coordinates. ``mean_shift``: root mean square over features of ``(photos' mean - model
    mean) / std``; ``max_mean_shift`` the largest of those in absolute value. The first two
    are None for no photos, or photos with no variance about the model's mean.
    """

    rows: int
    retained_variance: float | None
    reconstruction_error: float | None
    mean_shift: float
    max_mean_shift: float


def fit_quality(reduction: Reduction, moments: FeatureMoments) -> FitQuality:
    """``FitQuality`` of the photos whose ``moments`` these are under ``reduction``."""
    if moments.rows == 0:
        return FitQuality(0, None, None, 0.0, 0.0)
    scale = inverse_std(reduction.std)
    shift = (moments.mean - reduction.mean) * scale
    # Second moment about the model's mean, standardised: what the projection sees.
    second = moments.scatter / moments.rows * np.outer(scale, scale) + np.outer(shift, shift)
    total = float(np.trace(second))
    components = reduction.components
    retained = float(np.einsum("ik,ij,jk->", components, second, components))
    dim = reduction.mean.size
    return FitQuality(
        rows=moments.rows,
        retained_variance=retained / total if total > 0 else None,
        reconstruction_error=(total - retained) / dim if total > 0 else None,
        mean_shift=float(np.sqrt(np.mean(shift**2))),
        max_mean_shift=float(np.abs(shift).max()),
    )


@dataclass(frozen=True)
class Drift:
    """The new photos' ``FitQuality`` beside that of the photos the model was fitted on."""

    at_fit: FitQuality
    new: FitQuality

    @property
    def retained_drop(self) -> float | None:
        """How much less variance the new photos keep than the fitted ones (a share)."""
        if self.at_fit.retained_variance is None or self.new.retained_variance is None:
            return None
        return self.at_fit.retained_variance - self.new.retained_variance

    @property
    def drifted(self) -> bool:
        """Past either threshold (``RETAINED_DROP_THRESHOLD``, ``MEAN_SHIFT_THRESHOLD``)."""
        drop = self.retained_drop
        return (drop is not None and drop > RETAINED_DROP_THRESHOLD) or (
            self.new.mean_shift > MEAN_SHIFT_THRESHOLD
        )


def measure_drift(reduction: Reduction, fitted: FeatureMoments, new: FeatureMoments) -> Drift:
    """Drift of the ``new`` photos from the ``fitted`` ones (the moments ``reduction`` was fitted
    on), both under ``reduction``."""
    return Drift(at_fit=fit_quality(reduction, fitted), new=fit_quality(reduction, new))


def should_refit(refit: Refit, drift: Drift | None) -> bool:
    """Whether to refit: ``drift`` is None when the table has no model yet (always refit then)."""
    if drift is None or refit is Refit.ALWAYS:
        return True
    if refit is Refit.NEVER:
        return False
    return drift.new.rows > 0 and drift.drifted

"""The quality gate of ``--precision int8``: is the quantized model good enough for this run?

Before the model pass, the driver runs the f32 and the int8 model on the same gate images (a
seeded sample of the run's own images, none of them used for calibration) and compares:

- **feature cosine similarity**, image by image, of the int8 features to the f32 ones: its mean
  and its worst value;
- **a quick linear probe**, where the labels allow one (at least two labels with two gate
  images each): a ridge classifier trained on half of each label's gate images, once on the
  f32 features and once on the int8 ones, then scored on the other half. Its figure is the
  share of test images both probes put in the same class (and each one's accuracy).

The run goes on only if every figure reaches its threshold (``Thresholds``, documented in the
README); otherwise it stops before anything is written (``QualityGateError``, its own exit
code). Pure NumPy: features and labels in, a typed verdict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Ridge penalty, relative to the mean squared norm of the standardised rows: the probe only has
# to separate classes on a few hundred images, and a fixed relative penalty keeps it stable
# when there are fewer images than the 1280 features.
RIDGE = 1.0


@dataclass(frozen=True)
class Thresholds:
    """The lowest figures the gate accepts.

    ``mean_cosine`` and ``worst_cosine`` bound the int8 features' cosine similarity to the f32
    ones (mean over the gate images, and the lowest one); ``probe_agreement`` the share of test
    images the f32 and int8 probes classify alike, judged only when the probe has at least
    ``probe_test_images`` test images: on fewer, one image is more than the margin the
    threshold leaves (1 in 8 is 0.125), so the figure is recorded but decides nothing.
    """

    mean_cosine: float = 0.95
    worst_cosine: float = 0.80
    probe_agreement: float = 0.95
    probe_test_images: int = 40


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class ProbeComparison:
    """The quick linear probe on f32 and int8 features: images trained on and tested on, the
    share of test images classified alike, and each probe's test accuracy."""

    train_images: int
    test_images: int
    agreement: float
    accuracy_f32: float
    accuracy_int8: float


@dataclass(frozen=True)
class GateResult:
    """The gate's figures and verdict. ``probe`` is None (with ``probe_note``) when the labels
    allow no probe; ``failures`` names each figure below its threshold (empty: passed)."""

    images: int
    mean_cosine: float
    worst_cosine: float
    probe: ProbeComparison | None
    probe_note: str | None
    thresholds: Thresholds
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def cosine_similarities(f32: np.ndarray, int8: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``(n, d)`` matrices, in float64; a zero row scores 0."""
    a, b = f32.astype(np.float64), int8.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def split_per_label(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Train and test row indexes: each label's rows alternate train, test, train... (the rows
    are already in a seeded random order). None unless two labels have two rows or more."""
    by_label: dict[str, list[int]] = {}
    for row, label in enumerate(labels):
        by_label.setdefault(label, []).append(row)
    usable = [rows for rows in by_label.values() if len(rows) >= 2]
    if len(usable) < 2:
        return None
    train = [row for rows in usable for row in rows[0::2]]
    test = [row for rows in usable for row in rows[1::2]]
    return np.array(sorted(train)), np.array(sorted(test))


def ridge_probe(
    features: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray
) -> np.ndarray:
    """Fit a one-vs-rest ridge classifier on the ``train`` rows (standardised on them) and
    return its predicted label for each ``test`` row. Solved in the dual (rows x rows), so it
    costs a few milliseconds for a few hundred images whatever the feature width."""
    x = features.astype(np.float64)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    classes, encoded = np.unique(labels[train], return_inverse=True)
    targets = np.eye(len(classes))[encoded] * 2 - 1
    gram = x[train] @ x[train].T
    penalty = RIDGE * np.trace(gram) / len(train)
    dual = np.linalg.solve(gram + penalty * np.eye(len(train)), targets)
    scores = x[test] @ (x[train].T @ dual)
    return classes[scores.argmax(axis=1)]


def compare_probes(
    f32: np.ndarray, int8: np.ndarray, labels: Sequence[str]
) -> ProbeComparison | None:
    """The quick linear probe on each precision's features (``split_per_label``,
    ``ridge_probe``); None when the labels allow none."""
    split = split_per_label(labels)
    if split is None:
        return None
    train, test = split
    truth = np.asarray(labels, dtype=object)
    predicted_f32 = ridge_probe(f32, truth, train, test)
    predicted_int8 = ridge_probe(int8, truth, train, test)
    return ProbeComparison(
        train_images=len(train),
        test_images=len(test),
        agreement=float(np.mean(predicted_f32 == predicted_int8)),
        accuracy_f32=float(np.mean(predicted_f32 == truth[test])),
        accuracy_int8=float(np.mean(predicted_int8 == truth[test])),
    )


def judge(
    f32: np.ndarray,
    int8: np.ndarray,
    labels: Sequence[str],
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> GateResult:
    """The gate's verdict on one set of gate images.

    Args:
        f32: ``(n, 1280)`` features of the f32 model.
        int8: ``(n, 1280)`` features of the int8 model, same images, same order.
        labels: each image's label (the probe's classes).
        thresholds: the lowest figures accepted.

    Returns:
        The figures (rounded to 4 decimals) and the names of those below their threshold.

    Raises:
        ValueError: no image, or the two matrices differ in shape.
    """
    if f32.shape != int8.shape or len(f32) == 0 or len(labels) != len(f32):
        raise ValueError(f"gate needs matching non-empty features: {f32.shape}, {int8.shape}")
    cosines = cosine_similarities(f32, int8)
    probe = compare_probes(f32, int8, labels)
    figures = {
        "mean_cosine": (float(cosines.mean()), thresholds.mean_cosine),
        "worst_cosine": (float(cosines.min()), thresholds.worst_cosine),
    }
    if probe is not None and probe.test_images >= thresholds.probe_test_images:
        figures["probe_agreement"] = (probe.agreement, thresholds.probe_agreement)
    failures = tuple(
        f"{name} {value:.4f} < {bound}" for name, (value, bound) in figures.items() if value < bound
    )
    return GateResult(
        images=len(f32),
        mean_cosine=round(figures["mean_cosine"][0], 4),
        worst_cosine=round(figures["worst_cosine"][0], 4),
        probe=probe,
        probe_note=None if probe else "fewer than two labels with two gate images: no probe",
        thresholds=thresholds,
        failures=failures,
    )

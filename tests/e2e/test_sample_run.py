"""One real run of the README command over the sample: every output, the features against
Keras, the PCA against NumPy, the saved model reloaded."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pyspark.ml import PipelineModel
from pyspark.ml.functions import array_to_vector, vector_to_array

from benchmarks import probe_share
from fruits_pipeline.probe import TRAIN_ROWS_PER_CLASS
from fruits_pipeline.reduction import PCA_COL, VECTOR_COL, choose_k
from tests.conftest import SAMPLE, WEIGHTS, count_jpgs_per_label

pytestmark = pytest.mark.e2e


def read_parquet(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder).sort_values("path").reset_index(drop=True)


def test_sample_run_writes_every_output_and_counts_every_jpg(sample_run: dict[str, Any]) -> None:
    output, manifest = sample_run["output"], sample_run["manifest"]
    for name in ("features", "errors", "pca", "model"):
        assert (output / name).is_dir(), f"{name}/ missing"
    expected = count_jpgs_per_label(SAMPLE)
    assert sum(expected.values()) == 240
    assert manifest["status"] == "succeeded"
    assert manifest["images_per_label"] == expected
    assert {k: v["files_seen"] for k, v in manifest["counts"]["per_label"].items()} == expected
    assert manifest["counts"]["files_seen"] == 240
    assert manifest["counts"]["errors"] == 0
    features = read_parquet(output / "features")
    assert len(features) == 240
    assert features["label"].value_counts().to_dict() == expected
    assert set(features["split"]) == {"Training", "Test"}
    assert all(len(vector) == 1280 for vector in features["features"])
    assert manifest["weights"]["sha256"] == (
        "82996ab2f66b83c7127acc6c951a6fd15f18d27a8ff3b478c0da10aa65c667f2"
    )
    assert set(manifest["versions"]) >= {"python", "pyspark", "tensorflow-cpu", "numpy"}
    assert manifest["throughput"]["featurize_images_per_s"] > 0
    assert "run succeeded" in sample_run["stdout"]
    assert "(6/11) featurize done" in sample_run["stdout"]


def test_sample_run_writes_nothing_to_stderr(sample_run: dict[str, Any]) -> None:
    """No noise: no Spark, TensorFlow (its oneDNN notice on AVX-512 CPUs), Keras or make lines
    beside the job's own progress and summary on stdout."""
    assert sample_run["stderr"] == ""


def direct_keras_features(paths: list[str]) -> np.ndarray:
    """Features computed without Spark or the package: Pillow + Keras, as a notebook would."""
    import keras

    model = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, pooling="avg", weights=None
    )
    model.load_weights(str(WEIGHTS))
    pixels = []
    for path in paths:
        with Image.open(path.removeprefix("file:")) as image:
            rgb = image.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
            pixels.append(np.asarray(rgb, dtype=np.float32))
    batch = keras.applications.mobilenet_v2.preprocess_input(np.stack(pixels))
    return model.predict(batch, verbose=0)


def test_udf_features_equal_a_direct_keras_computation(sample_run: dict[str, Any]) -> None:
    features = read_parquet(sample_run["output"] / "features")
    chosen = features.groupby("label").head(2)  # 12 images, every class
    expected = direct_keras_features(list(chosen["path"]))
    actual = np.stack(chosen["features"].to_numpy())
    assert actual.shape == (12, 1280)
    assert np.abs(actual).max() > 0.1  # real activations, not zeros
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4)


def numpy_pca(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Projections on the top-k components and the explained-variance shares, in NumPy."""
    mean = features.mean(axis=0)
    std = features.std(axis=0, ddof=1)
    scaled = np.where(std > 0, (features - mean) / np.where(std > 0, std, 1.0), 0.0)
    covariance = np.cov(scaled, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    return scaled @ eigenvectors[:, :k], eigenvalues / eigenvalues.sum()


def test_pca_features_match_numpy_and_k_is_the_smallest(sample_run: dict[str, Any]) -> None:
    output, reduction = sample_run["output"], sample_run["manifest"]["reduction"]
    features = read_parquet(output / "features")
    pca = read_parquet(output / "pca")
    assert list(pca["path"]) == list(features["path"])
    k = reduction["k"]
    matrix = np.stack(features["features"].to_numpy()).astype(np.float64)
    expected, shares = numpy_pca(matrix, k)
    actual = np.stack(pca["pca_features"].to_numpy()).astype(np.float64)
    assert actual.shape == (240, k)
    for component in range(k):
        sign = np.sign(actual[:, component] @ expected[:, component])
        np.testing.assert_allclose(
            sign * actual[:, component],
            expected[:, component],
            rtol=0,
            atol=1e-3,
            err_msg=f"component {component}",
        )
    cumulative = np.cumsum(shares)
    assert cumulative[k - 1] >= 0.95 > cumulative[k - 2]
    assert reduction["achieved_variance"] == pytest.approx(cumulative[k - 1], abs=1e-9)
    assert reduction["cumulative_variance"][:k] == pytest.approx(cumulative[:k].tolist(), abs=1e-9)


def test_saved_model_reloads_and_projects_the_same(sample_run: dict[str, Any], spark) -> None:
    output = sample_run["output"]
    model = PipelineModel.load(str(output / "model"))
    features = spark.read.parquet(str(output / "features")).limit(20)
    projected = (
        model.transform(features.withColumn(VECTOR_COL, array_to_vector("features")))
        .select("path", vector_to_array(PCA_COL, "float32").alias("again"))
        .toPandas()
    )
    pca = read_parquet(output / "pca").set_index("path")
    for row in projected.itertuples():
        np.testing.assert_allclose(row.again, pca.loc[row.path, "pca_features"], atol=1e-5)


@pytest.mark.parametrize(
    ("shares", "target", "k"),
    [
        ([0.5, 0.3, 0.15, 0.05], 0.8, 2),
        ([0.5, 0.3, 0.15, 0.05], 0.81, 3),
        ([0.5, 0.3, 0.15, 0.05], 0.5, 1),
        ([0.5, 0.3, 0.15, 0.05], 1.0, 4),
        ([0.25] * 4, 1.0, 4),  # float sums land a hair under 1.0; still reaches it
    ],
)
def test_choose_k_is_the_smallest_reaching_the_target(shares, target, k) -> None:
    assert choose_k(shares, target) == k


def test_shipped_sample_images_are_real_jpegs() -> None:
    for path in SAMPLE.rglob("*.jpg"):
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            assert (image.format, image.size) == ("JPEG", (100, 100))


def test_preprocess_matches_keras_preprocess_input() -> None:
    from keras.applications import mobilenet_v2

    from fruits_pipeline.model import preprocess

    pixels = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    expected = mobilenet_v2.preprocess_input(pixels.astype(np.float32))
    actual = preprocess(pixels)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


def test_the_probe_share_benchmark_runs_on_the_sample_run(
    sample_run: dict[str, Any], spark
) -> None:
    # benchmarks.probe_share reads a finished run; the smoke runs' outputs are gone by then.
    # Its measurement and table, in this session (its main only parses arguments around them).
    run = sample_run["output"]
    figures = probe_share.measure(run, 1500, spark, probe_share.other_stages(run), True)
    assert figures["rows"] == 1500 and figures["run_images"] == 240
    before, after = figures["before"]["probe"], figures["after"]["probe"]
    # About 125 training rows a class: the probe as it is trains on TRAIN_ROWS_PER_CLASS each.
    assert before["train_rows"] > after["train_rows"] == 6 * TRAIN_ROWS_PER_CLASS
    assert 0 < figures["share_after"] < 1 and 0 < figures["share_before"] < 1
    assert "| after | 600 rows | " in probe_share.table(figures)

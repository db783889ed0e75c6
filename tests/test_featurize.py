"""Featurize internals: the packed result of the UDF and its unpacking, on tiny inputs."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fruits_pipeline.config import FEATURE_DIM
from fruits_pipeline.featurize import (
    PACKED_BYTES,
    featurize_series,
    successes,
    unpack_batch,
)
from tests import hostile

pytestmark = pytest.mark.spark


def fake_predictor(batch: np.ndarray) -> np.ndarray:
    """Stands in for the model: a different, known vector per image (its mean pixel)."""
    means = batch.reshape(len(batch), -1).mean(axis=1)
    return np.outer(means, np.arange(1, FEATURE_DIM + 1, dtype=np.float32))


def test_featurize_series_packs_each_vector_and_keeps_row_order() -> None:
    images = [hostile.encode(hostile.fruit(), "JPEG"), None, hostile.encode(hostile.fruit(), "PNG")]
    result = featurize_series(pd.Series(images), fake_predictor, image_size=32, batch_size=1)

    assert list(result.columns) == ["packed_features", "error_kind", "error_message"]
    assert result["error_kind"].tolist() == [None, "empty_file", None]
    assert result["packed_features"][1] is None
    for row in (0, 2):
        vector = np.frombuffer(result["packed_features"][row], dtype="<f4")
        assert len(result["packed_features"][row]) == PACKED_BYTES
        assert vector.shape == (FEATURE_DIM,) and vector[0] != 0
        np.testing.assert_allclose(vector / vector[0], np.arange(1, FEATURE_DIM + 1), rtol=1e-6)


def test_non_finite_model_output_is_an_error_not_a_vector() -> None:
    def broken_for_second(batch: np.ndarray) -> np.ndarray:
        outputs = np.ones((len(batch), FEATURE_DIM), dtype=np.float32)
        outputs[1:, 7] = np.nan
        return outputs

    images = pd.Series([hostile.encode(hostile.fruit(), "JPEG")] * 2)
    result = featurize_series(images, broken_for_second, image_size=32, batch_size=2)
    assert result["error_kind"].tolist() == [None, "non_finite_features"]
    assert result["packed_features"][1] is None and "NaN" in result["error_message"][1]


def test_unpack_batch_turns_bytes_back_into_the_same_floats() -> None:
    vectors = np.random.default_rng(0).standard_normal((3, FEATURE_DIM)).astype(np.float32)
    batch = pa.RecordBatch.from_pydict(
        {
            "path": ["a", "b", "c"],
            "label": ["x"] * 3,
            "split": [None] * 3,
            "packed_features": [vector.tobytes() for vector in vectors],
        },
        schema=pa.schema(
            [
                ("path", pa.string()),
                ("label", pa.string()),
                ("split", pa.string()),
                ("packed_features", pa.binary()),
            ]
        ),
    )
    # A slice starts at a non-zero offset inside the buffers: the offsets must be honoured.
    unpacked = unpack_batch(batch.slice(1, 2))
    assert unpacked.schema.names == ["path", "label", "split", "features"]
    assert unpacked.column("path").to_pylist() == ["b", "c"]
    np.testing.assert_array_equal(
        np.stack(unpacked.column("features").to_numpy(False)), vectors[1:]
    )


@pytest.mark.parametrize("bad", [b"\x00" * 12, None])
def test_unpack_batch_refuses_rows_that_are_not_whole_vectors(bad: bytes | None) -> None:
    batch = pa.RecordBatch.from_pydict(
        {"path": ["a"], "label": ["x"], "split": [None], "packed_features": [bad]},
        schema=pa.schema(
            [
                ("path", pa.string()),
                ("label", pa.string()),
                ("split", pa.string()),
                ("packed_features", pa.binary()),
            ]
        ),
    )
    with pytest.raises(ValueError, match="packed_features"):
        unpack_batch(batch)


def test_successes_unpacks_only_the_featurized_rows(spark) -> None:
    vector = np.linspace(-1, 1, FEATURE_DIM, dtype=np.float32)
    staged = spark.createDataFrame(
        [
            ("p1", "Apple", "Test", (vector.tobytes(), None, None)),
            ("p2", "Apple", "Test", (None, "truncated", "cannot decode")),
        ],
        "path string, label string, split string, "
        "result struct<packed_features binary, error_kind string, error_message string>",
    )
    rows = staged.transform(successes).collect()
    assert [row.path for row in rows] == ["p1"]
    assert staged.transform(successes).schema["features"].dataType.simpleString() == "array<float>"
    np.testing.assert_array_equal(np.asarray(rows[0].features, dtype=np.float32), vector)


def test_settle_worker_drops_zip_importers_and_freezes_the_gc(tmp_path) -> None:
    """Run in a fresh interpreter: gc.freeze() is for the life of the process."""
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("zipped_pkg/__init__.py", "")
        bundle.writestr("zipped_pkg/sub/__init__.py", "")
        bundle.writestr("zipped_pkg/later.py", "VALUE = 42\n")
    code = f"""
import gc, importlib, sys, zipimport
sys.path.insert(0, {str(archive)!r})
import zipped_pkg.sub
from fruits_pipeline.model import settle_worker
count = lambda: sum(isinstance(f, zipimport.zipimporter) for f in sys.path_importer_cache.values())
before = count()
settle_worker()
after = count()
importlib.invalidate_caches()
from zipped_pkg.later import VALUE  # the zip still imports after its importers were dropped
print(before, after, gc.get_freeze_count() > 0, VALUE)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    before, after, frozen, value = result.stdout.split()
    assert int(before) >= 2 and after == "0" and frozen == "True" and value == "42"

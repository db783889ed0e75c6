"""Engines are predictor factories; each gives Keras' features; OpenVINO needs no TF."""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fruits_pipeline.config import ENGINES, FEATURE_DIM, OPENVINO, JobConfig
from fruits_pipeline.decoding import decode_image
from fruits_pipeline.engines import ConvertedModels, openvino_model, predictor_factory
from fruits_pipeline.errors import WeightsError
from fruits_pipeline.featurize import featurize_images, make_featurize_udf, successes
from fruits_pipeline.model import OpenVinoModel, load_weights
from tests import hostile
from tests.conftest import SAMPLE, SHARED_SAMPLE, WEIGHTS
from tests.e2e.test_sample_run import direct_keras_features

# the real model, both engines
pytestmark = pytest.mark.e2e


def real_photos(per_label: int = 2) -> list[Path]:
    """``per_label`` real Fruits-360 photos of every class (the shared sample when present)."""
    source = SHARED_SAMPLE if SHARED_SAMPLE.is_dir() else SAMPLE
    photos: dict[str, list[Path]] = {}
    for path in sorted(source.rglob("*.jpg")):
        photos.setdefault(path.parent.name, []).append(path)
    return [path for paths in photos.values() for path in paths[:per_label]]


def images_frame(spark, contents: list[tuple[str, bytes]], partitions: int):
    rows = [(path, "label", None, data) for path, data in contents]
    return spark.createDataFrame(
        rows, "path string, label string, split string, content binary"
    ).repartition(partitions)


def features_by_path(frame) -> dict[str, np.ndarray]:
    rows = frame.transform(successes).collect()
    return {row.path: np.asarray(row.features, dtype=np.float32) for row in rows}


@pytest.mark.spark  # a fake model
def test_featurize_udf_runs_any_factory_once_per_python_worker(spark) -> None:
    """A fake model under Spark: the factory runs once per worker, however many tasks."""
    builds = f"FRUITS_TEST_BUILDS_{uuid.uuid4().hex}"

    def fake_factory():
        import os

        os.environ[builds] = str(int(os.environ.get(builds, "0")) + 1)

        def predict(batch: np.ndarray) -> np.ndarray:
            outputs = np.zeros((len(batch), FEATURE_DIM), dtype=np.float32)
            outputs[:, 0] = batch.reshape(len(batch), -1).mean(axis=1)
            outputs[:, 1] = os.getpid()
            outputs[:, 2] = int(os.environ[builds])
            return outputs

        return predict

    photos = {f"p{index}": hostile.encode(hostile.fruit(), "JPEG") for index in range(12)}
    frame = images_frame(spark, list(photos.items()), partitions=6)
    featurized = frame.transform(featurize_images(make_featurize_udf(fake_factory, 32, 4)))
    features = features_by_path(featurized)

    assert sorted(features) == sorted(photos)
    for path, vector in features.items():
        pixels = decode_image(photos[path], 32)
        assert vector[0] == pytest.approx(float(pixels.mean()), abs=1e-4)
        assert vector[2] == 1, "the factory ran more than once in a Python worker"
    # 6 tasks on 2 cores: workers served several tasks each, and built their model once.
    assert len({vector[1] for vector in features.values()}) < 6


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_gives_the_features_of_a_direct_keras_computation(spark, engine) -> None:
    """Both engines, through the UDF under Spark with a real broadcast, on real photos.

    The default engine (``JobConfig.engine``) is one of them: it must match Keras within 1e-4.
    """
    assert JobConfig(input_uri="", output_uri="").engine in ENGINES
    photos = real_photos()
    weights = load_weights(str(WEIGHTS), 224)
    factory = predictor_factory(engine, weights, 224, 1, spark.sparkContext.broadcast)
    contents = [(str(path), path.read_bytes()) for path in photos]
    frame = images_frame(spark, contents, partitions=2)
    features = features_by_path(
        frame.transform(featurize_images(make_featurize_udf(factory, 224, 8)))
    )

    expected = direct_keras_features([str(path) for path in photos])
    actual = np.stack([features[str(path)] for path in photos])
    assert actual.shape == (len(photos), FEATURE_DIM) and len(photos) >= 6
    assert np.abs(actual).max() > 0.1  # real activations, not zeros
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4)


def test_openvino_worker_never_imports_tensorflow(tmp_path: Path) -> None:
    """The openvino factory, unpickled and run in a fresh interpreter as a Spark worker would,
    loads no TensorFlow or Keras, and still gives Keras' features."""
    weights = load_weights(str(WEIGHTS), 224)
    factory = predictor_factory(
        OPENVINO, weights, 224, 1, lambda value: SimpleNamespace(value=value)
    )
    photos = real_photos(per_label=1)
    batch = np.stack([decode_image(path.read_bytes(), 224) for path in photos])
    (tmp_path / "factory.pickle").write_bytes(pickle.dumps(factory))
    np.save(tmp_path / "batch.npy", batch)
    code = f"""
import pickle, sys
import numpy as np
from fruits_pipeline.featurize import worker_predictor
factory = pickle.loads(open({str(tmp_path / "factory.pickle")!r}, "rb").read())
predict = worker_predictor("test", factory)
np.save({str(tmp_path / "features.npy")!r}, predict(np.load({str(tmp_path / "batch.npy")!r})))
print(sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras")))
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip() == "[]"
    expected = direct_keras_features([str(path) for path in photos])
    np.testing.assert_allclose(np.load(tmp_path / "features.npy"), expected, rtol=0, atol=1e-4)


@pytest.mark.unit
def test_converted_models_are_found_by_file_and_input_size_and_a_damaged_entry_is_a_miss(
    tmp_path: Path,
) -> None:
    cache = ConvertedModels(tmp_path / "cache")
    ir = OpenVinoModel(xml=b"<net/>", weights=b"\x00" * 16)
    assert cache.get("ab" * 32, 224) is None
    cache.put("ab" * 32, 224, ir)
    assert cache.get("ab" * 32, 224) == ir
    assert cache.get("ab" * 32, 160) is None and cache.get("cd" * 32, 224) is None
    assert [p.name for p in cache.folder.iterdir()] == [cache.entry("ab" * 32, 224).name]
    (cache.entry("ab" * 32, 224) / "model.bin").unlink()
    assert cache.get("ab" * 32, 224) is None
    cache.put("cd" * 32, 224, ir)  # over an existing file, a failed write is silent
    (tmp_path / "file").write_text("")
    ConvertedModels(tmp_path / "file" / "cache").put("ab" * 32, 224, ir)


@pytest.mark.unit
def test_weights_found_converted_are_checked_by_hash_and_never_load_keras(monkeypatch) -> None:
    import fruits_pipeline.model as model

    def no_keras(image_size: int) -> None:
        raise AssertionError("a cached conversion must not build the Keras model")

    monkeypatch.setattr(model, "build_model", no_keras)
    ir = OpenVinoModel(xml=b"<net/>", weights=b"")
    seen: list[str] = []
    loaded = load_weights(str(WEIGHTS), 224, converted=lambda digest: seen.append(digest) or ir)
    assert loaded.converted == ir and loaded.arrays == [] and seen == [loaded.sha256]
    assert openvino_model(loaded, 224) is ir
    with pytest.raises(WeightsError, match="not the expected"):
        load_weights(str(WEIGHTS), 224, sha256="0" * 64, converted=lambda digest: ir)

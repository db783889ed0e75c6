"""MobileNetV2: where its weights come from, how they are checked, and how Keras runs it.

The driver resolves the weights once (``load_weights``) and checks they fit the architecture;
``engines.py`` turns them into what is broadcast. Workers never touch a network or a file. Every
function here imports TensorFlow only when called, so a worker of the openvino engine, which
imports this module for ``preprocess`` and ``settle_worker``, never loads it.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import sys
import tempfile
import warnings
import zipimport
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fruits_pipeline.errors import WeightsError
from fruits_pipeline.storage import download_s3_object, is_s3_uri

if TYPE_CHECKING:
    import keras

IMAGENET = "imagenet"
# The official Keras Applications file (what weights="imagenet" downloads for this variant).
IMAGENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
IMAGENET_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + IMAGENET_FILE
)

# ``uint8 (n, s, s, 3)`` RGB pixels -> ``float32 (n, 1280)`` features; each engine scales the
# pixels its own way (in the graph for OpenVINO, ``preprocess`` for TensorFlow).
Predictor = Callable[[np.ndarray], np.ndarray]


# Environment TensorFlow reads once, when it first loads in a process (driver or worker).
TENSORFLOW_ENV = {
    # A page of C++ start-up notices per process otherwise; warnings and errors stay.
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # TensorFlow's pooling allocator on CPU. Without it every model call maps fresh pages for
    # its tens-of-MB activations and faults them in: a quarter of the CPU went to the kernel
    # and inference ran ~25 % slower (see README, Performance).
    "TF_CPU_ALLOCATOR_USE_BFC": "true",
}


# What TensorFlow's C++ start-up writes to stderr at import, past TF_CPP_MIN_LOG_LEVEL (absl
# logs before absl::InitializeLog() ignore it): INFO lines ("oneDNN custom operations are on",
# on CPUs with AVX-512) and absl's banner about them.
_TENSORFLOW_NOTICE = re.compile(r"I\d{4} |WARNING: All log messages before absl::InitializeLog")


def _prepare_tensorflow() -> None:
    """Set ``TENSORFLOW_ENV`` and import TensorFlow once in this process, its start-up notices
    dropped from stderr; anything else it writes there (warnings, errors) is passed on."""
    for name, value in TENSORFLOW_ENV.items():
        os.environ.setdefault(name, value)
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not _TENSORFLOW_NOTICE.match(line):
                    sys.stderr.write(line)


@dataclass(frozen=True)
class OpenVinoModel:
    """An OpenVINO IR in memory: ``xml`` the graph, ``weights`` its f32 ``.bin`` (about 9 MB)."""

    xml: bytes
    weights: bytes


@dataclass(frozen=True)
class LoadedWeights:
    """Weights resolved and checked on the driver, ready to broadcast.

    ``arrays`` is ``model.get_weights()``: 260 float32 arrays, about 9 MB in all, which is what
    ``SparkContext.broadcast`` ships to each executor once. ``converted`` is the f32 OpenVINO
    IR of this very file when a cache had it (``engines.ConvertedModels``); ``arrays`` is then
    empty, as Keras was never loaded.
    """

    source: str
    sha256: str
    arrays: list[np.ndarray]
    converted: OpenVinoModel | None = None


def build_model(image_size: int) -> keras.Model:
    """MobileNetV2 backbone, alpha 1.0, no top, average pooling: ``(n, s, s, 3) -> (n, 1280)``.

    Built with ``weights=None``; the convolution weights do not depend on the input size, so the
    224-pixel ImageNet weights fit any ``image_size`` (>= 32).
    """
    _prepare_tensorflow()
    import keras

    return keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3),
        alpha=1.0,
        include_top=False,
        pooling="avg",
        weights=None,
    )


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights_file(
    weights: str, download_dir: str, sha256: str | None = None, region: str | None = None
) -> str:
    """Return a local path for ``weights``: ``imagenet``, an ``s3://`` URI, or a local path.

    ``imagenet`` downloads the official Keras file into Keras' cache (``~/.keras/models``),
    checked by Keras against ``sha256`` when given (a stale cached copy is downloaded again);
    ``s3://bucket/key`` is fetched with boto3 (addressing ``region``) into ``download_dir``
    keeping the file name, whose suffix tells Keras the format (``.weights.h5`` Keras 3, ``.h5``
    legacy). Runs on the driver.
    """
    if weights == IMAGENET:
        _prepare_tensorflow()
        import keras

        try:
            return keras.utils.get_file(
                IMAGENET_FILE, IMAGENET_URL, cache_subdir="models", file_hash=sha256
            )
        except Exception as error:  # network failures and hash mismatches, several types
            raise WeightsError(
                f"cannot download the ImageNet weights from {IMAGENET_URL}: {error}. Without "
                "internet, pass --weights with a local .h5 file or an s3:// URI "
                "(scripts/stage_weights.sh puts the official file in S3)."
            ) from error
    if is_s3_uri(weights):
        try:
            return download_s3_object(weights, download_dir, region)
        except Exception as error:  # botocore's ClientError, NoCredentialsError, EndpointError...
            raise WeightsError(f"cannot download weights {weights}: {error}") from error
    path = weights.removeprefix("file://")
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {weights}")
    return path


def load_weights(
    weights: str,
    image_size: int,
    sha256: str | None = None,
    region: str | None = None,
    converted: Callable[[str], OpenVinoModel | None] = lambda digest: None,
) -> LoadedWeights:
    """Resolve, check and read the weights on the driver, before any Spark task starts.

    ``sha256``, when given, is the file's expected hash, whatever its source; ``region`` is
    the one an ``s3://`` download addresses. ``converted(digest)`` looks the file's hash up
    in a cache of converted models: on a hit the weights are returned with that model and
    Keras is not loaded (only a file that passed the checks below was ever converted).

    Raises:
        WeightsError: the file is missing, is not the expected one, is not HDF5, or its tensors
            do not fit MobileNetV2 (alpha 1.0, no top). The message names the file and what
            was wrong.
    """
    with tempfile.TemporaryDirectory(prefix="fruits-weights-") as download_dir:
        path = resolve_weights_file(weights, download_dir, sha256, region)
        actual = sha256_of(path)
        if sha256 is not None and actual != sha256:
            raise WeightsError(
                f"weights file {weights} has sha256 {actual}, not the expected {sha256}"
            )
        if (model_ir := converted(actual)) is not None:
            return LoadedWeights(source=weights, sha256=actual, arrays=[], converted=model_ir)
        import h5py

        if not h5py.is_hdf5(path):
            raise WeightsError(f"weights file {weights} is not an HDF5 (.h5) file")
        model = build_model(image_size)
        misfit = f"weights file {weights} does not fit MobileNetV2(alpha=1.0, include_top=False)"
        # Keras warns, once per layer group it cannot match (a hundred lines for another
        # architecture), and leaves those layers as initialised: a warning is a misfit too.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            try:
                model.load_weights(path)
            except Exception as error:  # Keras raises ValueError, KeyError or OSError by case
                raise WeightsError(f"{misfit}: {type(error).__name__}: {error}") from error
        if unmatched := [w for w in caught if issubclass(w.category, UserWarning)]:
            raise WeightsError(f"{misfit}: Keras: {unmatched[0].message}")
        return LoadedWeights(source=weights, sha256=actual, arrays=model.get_weights())


def preprocess(images: np.ndarray) -> np.ndarray:
    """``uint8 (n, s, s, 3)`` RGB -> ``float32`` in [-1, 1]: ``x / 127.5 - 1``.

    The arithmetic of Keras' ``mobilenet_v2.preprocess_input`` (a test checks they agree), in
    plain NumPy: Keras' version costs 1.5 ms per image here, 5 % of the model's own time.
    """
    scaled = np.multiply(images, np.float32(1 / 127.5), dtype=np.float32)
    scaled -= np.float32(1.0)
    return scaled


def traced_forward(model: keras.Model, image_size: int) -> Any:
    """``model(x, training=False)`` as a ``tf.function`` with a fixed input signature.

    ``(n, s, s, 3) float32 -> (n, 1280) float32``. One trace serves every batch size (the batch
    dimension is ``None``), so there is no retracing per batch and no eager per-layer overhead.
    ``training=False`` matters: the weights hold folded batch-norm statistics.
    """
    import tensorflow as tf

    @tf.function(
        input_signature=[tf.TensorSpec((None, image_size, image_size, 3), tf.float32)],
        reduce_retracing=True,
    )
    def forward(batch: Any) -> Any:
        return model(batch, training=False)

    return forward


def make_predictor(model: keras.Model, image_size: int) -> Predictor:
    """``traced_forward`` as a ``Predictor``: ``uint8 (n, s, s, 3)`` pixels in (scaled here
    with ``preprocess``), ``float32 (n, 1280)`` NumPy out."""
    forward = traced_forward(model, image_size)
    return lambda batch: forward(preprocess(batch)).numpy()


def configure_threads(threads: int) -> None:
    """Limit TensorFlow to ``threads`` intra-op threads (and one inter-op) in this process.

    Must run before TensorFlow executes its first op; later calls are ignored because TF cannot
    change them once initialised.
    """
    _prepare_tensorflow()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this worker: the first setting stays


def settle_worker() -> None:
    """Make the rest of this long-lived Python worker's life cheap; run once, after loading.

    ``gc.freeze()``: the tensorflow engine leaves ~360,000 long-lived objects (TensorFlow,
    Keras) that Python's cyclic GC re-scanned on every full collection (200 ms each): 7 % of
    the CPU during featurize. Frozen, the GC only walks what the batches allocate; the openvino
    engine's workers hold far fewer, and freezing them costs nothing. Then
    ``drop_zip_importers``.
    """
    gc.freeze()
    drop_zip_importers()


def drop_zip_importers() -> None:
    """Drop the ``zipimporter`` entries from ``sys.path_importer_cache``; run after each task.

    PySpark's worker calls ``importlib.invalidate_caches()`` at the start of every task, and on
    Python 3.11 that re-reads the whole ``pyspark.zip`` directory once per cached zip path
    (CPython gh-103200, fixed in 3.12): about 5 % of the featurize CPU. The entries are only a
    cache; a later import from the zip recreates the one it needs, which a task's own imports
    do, hence once per task rather than once per worker.
    """
    for path, finder in list(sys.path_importer_cache.items()):
        if isinstance(finder, zipimport.zipimporter):
            del sys.path_importer_cache[path]

"""Inference engines: what the driver broadcasts, and how a Python worker turns it into a model.

An engine is a **predictor factory**: a small picklable callable built on the driver around a
broadcast. The featurize UDF ships it to the Python workers and runs it once in each
(``featurize.worker_predictor``); it returns a ``Predictor``,
``uint8 (n, s, s, 3) RGB pixels -> float32 (n, 1280)``: each engine scales the pixels itself.

- ``tensorflow``: broadcasts the Keras weights (NumPy arrays); each worker imports TensorFlow,
  rebuilds MobileNetV2 and runs it as a traced ``tf.function``.
- ``openvino``: the driver converts the checked Keras model with ``openvino.convert_model``,
  puts the pixel scaling into the graph (``PrePostProcessor``: uint8 in, ``x / 127.5 - 1``
  inside), and broadcasts the OpenVINO IR (graph XML and weights, bytes); each worker compiles
  it from memory with the OpenVINO runtime and **never imports TensorFlow**. The IR may be the
  f32 conversion or its int8 quantization (``quantize.py``): the workers run either alike.

Both give the same features within 1e-4 of a direct Keras computation (tests/test_engines.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from fruits_pipeline.config import ENGINES, OPENVINO, TENSORFLOW, JobConfig
from fruits_pipeline.model import (
    LoadedWeights,
    OpenVinoModel,
    Predictor,
    build_model,
    configure_threads,
    load_weights,
    make_predictor,
    traced_forward,
)

if TYPE_CHECKING:
    import keras
    import openvino as ov
    from pyspark import Broadcast

PredictorFactory = Callable[[], Predictor]
Broadcaster = Callable[[Any], "Broadcast[Any]"]


@dataclass(frozen=True)
class TensorFlowFactory:
    """Worker side of the ``tensorflow`` engine: Keras weights in, traced ``tf.function`` out.

    ``weights`` is the broadcast of ``LoadedWeights.arrays``; ``threads`` TensorFlow intra-op
    threads (set before TensorFlow runs its first op in the worker, else ignored).
    """

    weights: Broadcast[list[np.ndarray]]
    image_size: int
    threads: int

    def __call__(self) -> Predictor:
        configure_threads(self.threads)
        model = build_model(self.image_size)
        model.set_weights(self.weights.value)
        return make_predictor(model, self.image_size)


def to_openvino(model: keras.Model, image_size: int) -> OpenVinoModel:
    """Convert a Keras MobileNetV2 to an OpenVINO IR taking uint8 pixels, on the driver.

    Converts the same traced ``tf.function`` the tensorflow engine runs (fixed input signature,
    dynamic batch, ``training=False``), then ``with_pixel_input`` moves the scaling into the
    graph, so a worker hands the decoded uint8 batch over as it is (a quarter of the bytes, no
    float pass in Python).
    """
    import openvino as ov

    return serialize(with_pixel_input(ov.convert_model(traced_forward(model, image_size))))


def with_pixel_input(graph: ov.Model) -> ov.Model:
    """``graph`` with a ``uint8 (n, s, s, 3)`` input scaled inside to ``x / 127.5 - 1``.

    The arithmetic of ``model.preprocess`` (Keras' ``preprocess_input``), as OpenVINO
    ``PrePostProcessor`` steps applied in order: convert to f32, divide by 127.5, subtract 1.
    """
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    steps = PrePostProcessor(graph)
    steps.input().tensor().set_element_type(ov.Type.u8)
    steps.input().preprocess().convert_element_type(ov.Type.f32).scale(127.5).mean(1.0)
    return steps.build()


def serialize(graph: ov.Model) -> OpenVinoModel:
    """``graph`` as IR bytes. Pitfall: ``openvino.save_model`` compresses weights to f16 by
    default; they are saved f32 here, so the IR holds exactly the Keras weights."""
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="fruits-openvino-") as folder:
        xml = Path(folder) / "model.xml"
        ov.save_model(graph, xml, compress_to_fp16=False)
        return OpenVinoModel(xml=xml.read_bytes(), weights=xml.with_suffix(".bin").read_bytes())


def read_ir(ir: OpenVinoModel) -> ov.Model:
    """The IR's graph, read from memory (no file written)."""
    import openvino as ov

    weights = ov.Tensor(np.frombuffer(ir.weights, dtype=np.uint8))
    return ov.Core().read_model(model=ir.xml, weights=weights)


def compile_predictor(ir: OpenVinoModel, threads: int) -> Predictor:
    """Compile ``ir`` for the CPU with ``openvino_properties(threads)``: a ``Predictor`` holding
    one infer request (one caller at a time; a Spark worker runs one task at a time)."""
    import openvino as ov

    request = (
        ov.Core().compile_model(read_ir(ir), "CPU", openvino_properties(threads))
    ).create_infer_request()

    def predict(batch: np.ndarray) -> np.ndarray:
        return request.infer({0: batch}, share_inputs=True)[0]

    return predict


def openvino_properties(threads: int) -> dict[str, Any]:
    """The CPU plugin's settings for one Spark Python worker (README, Performance: measured)."""
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    return dict(
        [
            # OpenVINO pins its threads to cores by default: two 1-thread workers then share one.
            hints.enable_cpu_pinning(False),
            # f32 exactly: on bf16-capable CPUs the plugin defaults to bf16 (0.7 off Keras).
            hints.inference_precision(ov.Type.f32),
            # One thread per worker: Spark already runs one task (one worker) per core.
            props.inference_num_threads(threads),
            # A worker runs one request at a time; more streams would only split its threads.
            props.streams.num(1),
            hints.performance_mode(hints.PerformanceMode.LATENCY),
        ]
    )


@dataclass(frozen=True)
class OpenVinoFactory:
    """Worker side of the ``openvino`` engine: compiles the broadcast IR from memory.

    Imports only the OpenVINO runtime and NumPy (no TensorFlow, no NNCF, no file written).
    """

    model: Broadcast[OpenVinoModel]
    threads: int

    def __call__(self) -> Predictor:
        return compile_predictor(self.model.value, self.threads)


# Bumped whenever ``to_openvino`` changes what it produces, so no cached IR outlives its recipe.
CONVERSION = "uint8-input-scaled-in-graph-1"


# The distributions whose release can change a conversion (TensorFlow as either wheel).
CONVERTERS = ("keras", "tensorflow", "tensorflow-cpu")


def installed(distribution: str) -> str:
    """``distribution``'s installed version, or ``-`` when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "-"


@dataclass(frozen=True)
class ConvertedModels:
    """f32 OpenVINO IRs converted before, on the driver's disk, one per weights file (by its
    sha256), input size, conversion recipe and OpenVINO/Keras/TensorFlow release.

    Converting costs the driver TensorFlow's import, two Keras builds and ``convert_model``
    (tens of seconds); a cached IR costs reading 9 MB. Pitfall: an IR is stored only after its
    file passed ``model.load_weights``' checks, which a hit then skips; a damaged entry (not
    both files, or unreadable) is a miss and is written again.
    """

    folder: Path

    @staticmethod
    def default() -> ConvertedModels:
        """``$XDG_CACHE_HOME/fruits-pipeline/openvino`` (``~/.cache`` when unset)."""
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return ConvertedModels(Path(cache) / "fruits-pipeline" / "openvino")

    def entry(self, sha256: str, image_size: int) -> Path:
        import openvino

        recipe = [sha256, str(image_size), CONVERSION, openvino.__version__]
        recipe += [installed(name) for name in CONVERTERS]
        return self.folder / hashlib.sha256("\n".join(recipe).encode()).hexdigest()[:32]

    def get(self, sha256: str, image_size: int) -> OpenVinoModel | None:
        entry = self.entry(sha256, image_size)
        try:
            return OpenVinoModel(
                xml=(entry / "model.xml").read_bytes(), weights=(entry / "model.bin").read_bytes()
            )
        except OSError:
            return None

    def put(self, sha256: str, image_size: int, ir: OpenVinoModel) -> None:
        """Store ``ir`` atomically (a folder renamed into place); a cache that cannot be written
        (read-only home, full disk) is no reason to fail a run."""
        entry, partial = self.entry(sha256, image_size), None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(dir=self.folder, prefix=".partial-"))
            (partial / "model.xml").write_bytes(ir.xml)
            (partial / "model.bin").write_bytes(ir.weights)
            os.replace(partial, entry)
        except OSError:
            if partial is not None:
                shutil.rmtree(partial, ignore_errors=True)


def openvino_model(
    weights: LoadedWeights, image_size: int, cache: ConvertedModels | None = None
) -> OpenVinoModel:
    """The checked Keras weights as the f32 OpenVINO IR the workers run (``to_openvino``):
    the one ``weights`` came with from ``cache``, or converted now and stored in ``cache``."""
    if weights.converted is not None:
        return weights.converted
    model = build_model(image_size)
    model.set_weights(weights.arrays)
    ir = to_openvino(model, image_size)
    if cache is not None:
        cache.put(weights.sha256, image_size, ir)
    return ir


def predictor_factory(
    engine: str,
    weights: LoadedWeights,
    image_size: int,
    threads: int,
    broadcast: Broadcaster,
    cache: ConvertedModels | None = None,
) -> PredictorFactory:
    """Build, on the driver, what ``engine`` broadcasts, and the factory its workers run.

    Args:
        engine: ``"openvino"`` or ``"tensorflow"``.
        weights: the checked Keras weights (``model.load_weights``).
        image_size: model input side in pixels.
        threads: model threads per Python worker.
        broadcast: ``SparkContext.broadcast`` (or a stand-in in tests).
        cache: where the openvino engine finds or stores the converted model.

    Returns:
        A picklable ``() -> Predictor``, to run once per Python worker.
    """
    if engine == TENSORFLOW:
        return TensorFlowFactory(broadcast(weights.arrays), image_size, threads)
    if engine == OPENVINO:
        return OpenVinoFactory(broadcast(openvino_model(weights, image_size, cache)), threads)
    raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")


class ModelSource(Protocol):
    """What a run needs of its model, on the driver: the job calls both, in this order.

    ``load_weights(config, region)`` resolves and checks the weights (stage "load weights";
    ``region`` is the one an ``s3://`` download addresses) and raises ``WeightsError`` when they
    are unusable; ``predictor_factory(config, weights, broadcast)`` builds what the workers run.
    The job's default is ``MOBILENET_V2``; a test passes a fake that needs no weights file and
    no TensorFlow.
    """

    def load_weights(self, config: JobConfig, region: str | None) -> LoadedWeights: ...

    def predictor_factory(
        self, config: JobConfig, weights: LoadedWeights, broadcast: Broadcaster
    ) -> PredictorFactory: ...


@dataclass(frozen=True)
class MobileNetV2Source:
    """The real model: ``model.load_weights`` then ``predictor_factory`` for ``config.engine``."""

    def load_weights(self, config: JobConfig, region: str | None) -> LoadedWeights:
        cache = converted_models(config)
        return load_weights(
            config.weights,
            config.image_size,
            config.weights_sha256,
            region,
            (lambda digest: cache.get(digest, config.image_size)) if cache else lambda _: None,
        )

    def predictor_factory(
        self, config: JobConfig, weights: LoadedWeights, broadcast: Broadcaster
    ) -> PredictorFactory:
        return predictor_factory(
            config.engine,
            weights,
            config.image_size,
            config.model_threads,
            broadcast,
            converted_models(config),
        )


def converted_models(config: JobConfig) -> ConvertedModels | None:
    """The cache of converted models a run uses: the default one, for the openvino engine,
    unless ``--no-model-cache``."""
    return ConvertedModels.default() if config.model_cache and config.engine == OPENVINO else None


MOBILENET_V2 = MobileNetV2Source()

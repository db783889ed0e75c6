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

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from fruits_pipeline.config import ENGINES, OPENVINO, TENSORFLOW, JobConfig
from fruits_pipeline.model import (
    LoadedWeights,
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


@dataclass(frozen=True)
class OpenVinoModel:
    """An OpenVINO IR in memory: ``xml`` the graph, ``weights`` its f32 ``.bin`` (about 9 MB)."""

    xml: bytes
    weights: bytes


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


def openvino_model(weights: LoadedWeights, image_size: int) -> OpenVinoModel:
    """The checked Keras weights as the f32 OpenVINO IR the workers run (``to_openvino``)."""
    model = build_model(image_size)
    model.set_weights(weights.arrays)
    return to_openvino(model, image_size)


def predictor_factory(
    engine: str,
    weights: LoadedWeights,
    image_size: int,
    threads: int,
    broadcast: Broadcaster,
) -> PredictorFactory:
    """Build, on the driver, what ``engine`` broadcasts, and the factory its workers run.

    Args:
        engine: ``"openvino"`` or ``"tensorflow"``.
        weights: the checked Keras weights (``model.load_weights``).
        image_size: model input side in pixels.
        threads: model threads per Python worker.
        broadcast: ``SparkContext.broadcast`` (or a stand-in in tests).

    Returns:
        A picklable ``() -> Predictor``, to run once per Python worker.
    """
    if engine == TENSORFLOW:
        return TensorFlowFactory(broadcast(weights.arrays), image_size, threads)
    if engine == OPENVINO:
        return OpenVinoFactory(broadcast(openvino_model(weights, image_size)), threads)
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
        return load_weights(config.weights, config.image_size, config.weights_sha256, region)

    def predictor_factory(
        self, config: JobConfig, weights: LoadedWeights, broadcast: Broadcaster
    ) -> PredictorFactory:
        return predictor_factory(
            config.engine, weights, config.image_size, config.model_threads, broadcast
        )


MOBILENET_V2 = MobileNetV2Source()

"""``--precision int8``: the f32 OpenVINO IR quantized to int8 on the driver, with NNCF.

Post-training quantization: NNCF runs the f32 model on a few hundred calibration images, records
the range of every activation and inserts int8 ``FakeQuantize`` operations; the CPU plugin then
runs the convolutions in int8 (VNNI or AMX where the CPU has them). The result is an ordinary
``OpenVinoModel``, broadcast and compiled by the workers exactly as the f32 one, so the workers
import neither TensorFlow nor NNCF.

The calibration images are a seeded sample of the run's own images, decoded by
``decoding.decode_image`` exactly as the featurize stage decodes them (``sampling.py``). Whether
the quantized model is good enough is the quality gate's call (``gate.py``), never assumed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
from pyspark.sql import DataFrame

from fruits_pipeline.config import INT8
from fruits_pipeline.engines import OpenVinoModel, compile_predictor, read_ir, serialize
from fruits_pipeline.errors import QualityGateError
from fruits_pipeline.gate import DEFAULT_THRESHOLDS, GateResult, Thresholds, judge
from fruits_pipeline.manifest import QuantizationSummary
from fruits_pipeline.sampling import DecodedSample, decoded_sample


def quantize(ir: OpenVinoModel, calibration: np.ndarray) -> OpenVinoModel:
    """Quantize an f32 IR to int8 with NNCF's post-training quantization, on the driver.

    Args:
        ir: the f32 IR (``engines.openvino_model``), taking ``uint8 (n, s, s, 3)`` pixels.
        calibration: ``uint8 (c, s, s, 3)`` decoded images; every one is used (300 take about
            10 s on one core). Each is fed alone, so the activation statistics are per image.

    Returns:
        The int8 IR, same input and output as ``ir``.

    Pitfall: calibration images unlike the run's (blank, another domain) still quantize
    without an error, into a model whose features are wrong: the gate is what catches that.
    """
    import nncf

    if len(calibration) == 0:
        raise ValueError("quantization needs at least one calibration image")
    dataset = nncf.Dataset([image[np.newaxis] for image in calibration])
    with _without_progress_bars():
        quantized = nncf.quantize(
            read_ir(ir),
            dataset,
            subset_size=len(calibration),
            preset=nncf.QuantizationPreset.PERFORMANCE,
        )
    return serialize(quantized)


@contextmanager
def _without_progress_bars() -> Iterator[None]:
    """NNCF draws its progress bars with rich's shared console on stdout, in the middle of the
    job's own progress lines (and as raw text in an EMR step's log): it is muted meanwhile."""
    from rich import get_console  # NNCF's own dependency

    console = get_console()
    quiet, console.quiet = console.quiet, True
    try:
        yield
    finally:
        console.quiet = quiet


# Calibration images: NNCF's own default subset size; the issue measured 300 real photos enough
# (accuracy 0.981 against 0.984 for f32 on 95 classes).
CALIBRATION_IMAGES = 300
# Images the gate compares the two precisions on, apart from the calibration ones.
GATE_IMAGES = 256
# Fewer gate images than this cannot tell a good quantization from a bad one.
MIN_GATE_IMAGES = 8
# Images per model call when the driver computes the gate's features.
GATE_BATCH = 16


@dataclass(frozen=True)
class CheckedInt8:
    """The int8 IR, how many images calibrated it, and the gate's verdict on it."""

    model: OpenVinoModel
    calibration_images: int
    gate: GateResult


def features_of(ir: OpenVinoModel, pixels: np.ndarray, threads: int) -> np.ndarray:
    """``float32 (n, 1280)`` features of ``uint8 (n, s, s, 3)`` pixels by ``ir``, on the
    driver, ``GATE_BATCH`` images per call."""
    predict = compile_predictor(ir, threads)
    batches = [
        predict(pixels[start : start + GATE_BATCH]).copy()
        for start in range(0, len(pixels), GATE_BATCH)
    ]
    return np.concatenate(batches).astype(np.float32)


def quantize_and_judge(
    f32: OpenVinoModel,
    sample: DecodedSample,
    calibration_images: int = CALIBRATION_IMAGES,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    threads: int = 1,
) -> CheckedInt8:
    """Quantize ``f32`` on the start of ``sample`` and judge it on the rest (``gate.judge``).

    Args:
        f32: the f32 IR the run would otherwise broadcast.
        sample: the run's decoded sample (``sampling.decoded_sample``), seeded order.
        calibration_images: most images to calibrate on; a small sample keeps at least half
            for the gate, so the gate always judges images the calibration never saw.
        thresholds: the gate's lowest accepted figures.
        threads: OpenVINO threads for the driver's two gate passes.

    Raises:
        QualityGateError: fewer than ``MIN_GATE_IMAGES`` images are left for the gate.
    """
    count = min(calibration_images, max(len(sample) - GATE_IMAGES, len(sample) // 2))
    calibration, held_out = sample.take(0, count), sample.take(count)
    if len(held_out) < MIN_GATE_IMAGES:
        raise QualityGateError(
            f"--precision int8 needs at least {2 * MIN_GATE_IMAGES} readable images to calibrate "
            f"and check the quantized model; the input has {len(sample)}: use --precision f32"
        )
    int8 = quantize(f32, calibration.pixels)
    held_out = held_out.take(0, GATE_IMAGES)
    verdict = judge(
        features_of(f32, held_out.pixels, threads),
        features_of(int8, held_out.pixels, threads),
        held_out.labels,
        thresholds,
    )
    return CheckedInt8(model=int8, calibration_images=count, gate=verdict)


def enforce(checked: CheckedInt8) -> CheckedInt8:
    """``checked`` if it passed the gate; ``QualityGateError`` (exit 8) with its figures if not."""
    gate = checked.gate
    if gate.passed:
        return checked
    probe = gate.probe
    raise QualityGateError(
        f"--precision int8 refused by the quality gate on {gate.images} images of the input "
        f"(calibrated on {checked.calibration_images}): {'; '.join(gate.failures)}. Mean "
        f"cosine similarity to f32 {gate.mean_cosine:.4f}, worst {gate.worst_cosine:.4f}"
        + (f", probe agreement {probe.agreement:.4f}" if probe else "")
        + ". Nothing was written; run with --precision f32."
    )


def summary(checked: CheckedInt8, seconds: float) -> QuantizationSummary:
    """The manifest's record of an int8 model that passed the gate."""
    gate, probe = checked.gate, checked.gate.probe
    return QuantizationSummary(
        precision=INT8,
        calibration_images=checked.calibration_images,
        gate_images=gate.images,
        mean_cosine=gate.mean_cosine,
        worst_cosine=gate.worst_cosine,
        probe_agreement=round(probe.agreement, 4) if probe else None,
        probe_accuracy_f32=round(probe.accuracy_f32, 4) if probe else None,
        probe_accuracy_int8=round(probe.accuracy_int8, 4) if probe else None,
        thresholds=asdict(gate.thresholds),
        seconds=round(seconds, 2),
    )


def checked_int8_model(
    f32: OpenVinoModel, images: DataFrame, seed: int, image_size: int, threads: int
) -> tuple[OpenVinoModel, QuantizationSummary]:
    """The int8 model a run broadcasts, once it passed the gate, and the manifest's record.

    Samples ``CALIBRATION_IMAGES + GATE_IMAGES`` of ``images`` seeded by ``seed``
    (``sampling.decoded_sample``), quantizes on the first ones and judges on the rest, all on
    the driver before any image is featurized.

    Raises:
        QualityGateError: (exit 8) the gate refused the int8 model, or too few images decode.
    """
    start = time.perf_counter()
    sample = decoded_sample(images, CALIBRATION_IMAGES + GATE_IMAGES, seed, image_size)
    checked = enforce(quantize_and_judge(f32, sample, threads=threads))
    return checked.model, summary(checked, time.perf_counter() - start)

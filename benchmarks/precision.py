"""f32 against int8, in one run on the same cores: raw OpenVINO and the job's featurize stage.

(a) raw OpenVINO, each precision as the job builds it (the f32 IR the driver converts, and that
    IR quantized by NNCF on ``calibration`` real photos): the best of the layouts and batch
    sizes tried, timed again after (b), the faster figure counting (``throughput.raw_model``);
(b) ``fruits-pipeline --precision f32`` and ``--precision int8`` on the same N real photos: the
    featurize stage (images/s, from the manifest) and, for int8, what quantization and the gate
    cost the driver before it.

Ratios: the f32 job's featurize stage over raw f32 (target >= 0.9x) and the int8 job's over the
f32 job's (target >= 2.0x). ``python -m benchmarks.throughput --precision`` runs it and prints the
table; ``compare`` and ``table`` are what the smoke test calls with a tiny N.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks.throughput import (
    RAW_IMAGES,
    WEIGHTS,
    prepare_images,
    raw_model,
    run_job,
    timed_again,
)
from fruits_pipeline.config import F32, INT8, OPENVINO, PRECISIONS
from fruits_pipeline.decoding import decode_image
from fruits_pipeline.engines import OpenVinoFactory, openvino_model
from fruits_pipeline.model import load_weights
from fruits_pipeline.quantize import quantize

TARGETS = {"f32 job featurize / raw f32": 0.9, "int8 job featurize / f32 job featurize": 2.0}


def raw_factories(source: Path, calibration: int) -> tuple[dict[str, OpenVinoFactory], float]:
    """Each precision's ``OpenVinoFactory`` (one thread, a local stand-in for the broadcast),
    and the seconds NNCF took to quantize on ``calibration`` photos (taken after the
    ``RAW_IMAGES`` the raw trials feed, so the two sets do not overlap)."""
    f32 = openvino_model(load_weights(str(WEIGHTS), 224), 224)
    photos = sorted(source.rglob("*.jpg"))
    chosen = photos[RAW_IMAGES : RAW_IMAGES + calibration] or photos[:calibration]
    pixels = np.stack([decode_image(path.read_bytes(), 224) for path in chosen])
    start = time.perf_counter()
    int8 = quantize(f32, pixels)
    seconds = time.perf_counter() - start
    models = {F32: f32, INT8: int8}
    return {
        precision: OpenVinoFactory(SimpleNamespace(value=models[precision]), 1)  # type: ignore[arg-type]
        for precision in PRECISIONS
    }, seconds


def job_run(images: Path, output: Path, precision: str) -> dict[str, Any]:
    """``fruits-pipeline --precision`` on ``images`` (no probe): the featurize stage's rate and
    the manifest's record of the precision, and the peak RSS of each process (MB).

    Without the converted-model cache, as a first run on a new cluster: the driver then builds
    Keras to convert the model, and with int8 quantizes it as well, its highest peak, which the
    EMR driver's memory must hold (``tests/test_emr_memory.py``)."""
    manifest, wall, memory = run_job(
        images, output, "--precision", precision, "--no-probe", "--no-model-cache"
    )
    assert manifest.throughput is not None
    return {
        "precision": precision,
        "featurize_images_per_s": manifest.throughput.featurize_images_per_s,
        "timings_s": manifest.timings_s,
        "process_wall_s": round(wall, 2),
        "peak_rss_mb": memory,
        "quantization": manifest.to_json().get("quantization"),
    }


def compare(
    source: Path,
    work: Path,
    n: int,
    raw_seconds: float,
    layouts: list[tuple[int, int]],
    batches: list[int],
    calibration: int,
) -> dict[str, Any]:
    """Every figure of the comparison (see the module docstring), as a JSON-ready dict."""
    factories, quantize_s = raw_factories(source, calibration)
    raw = {
        p: raw_model(OPENVINO, factories[p], source, layouts, batches, raw_seconds)
        for p in PRECISIONS
    }
    images = prepare_images(source, n, work / f"images-{n}")
    jobs = {p: job_run(images, work / f"precision-{p}", p) for p in PRECISIONS}
    for precision in PRECISIONS:
        raw[precision] = timed_again(
            OPENVINO, factories[precision], source, raw[precision], raw_seconds
        )
    rate = {p: jobs[p]["featurize_images_per_s"] for p in PRECISIONS}
    ratios = {
        "f32 job featurize / raw f32": rate[F32] / raw[F32]["best"]["images_per_s"],
        "f32 job featurize / raw f32 decoding in the loop": rate[F32]
        / raw[F32]["best_decoded_in_loop"]["images_per_s"],
        "int8 job featurize / f32 job featurize": rate[INT8] / rate[F32],
        "raw int8 / raw f32": raw[INT8]["best"]["images_per_s"] / raw[F32]["best"]["images_per_s"],
    }
    return {
        "images": n,
        "calibration_images": calibration,
        "quantize_s": round(quantize_s, 1),
        "raw": raw,
        "jobs": jobs,
        "ratios": {name: round(value, 3) for name, value in ratios.items()},
    }


def table(figures: dict[str, Any]) -> str:
    """The comparison as printed lines: rates, ratios and the targets met or not."""
    lines = [f"f32 against int8, N = {figures['images']} images"]
    for precision in PRECISIONS:
        for name, best in (
            ("best", figures["raw"][precision]["best"]),
            ("best decoding in the loop", figures["raw"][precision]["best_decoded_in_loop"]),
        ):
            lines.append(
                f"(a) raw OpenVINO {precision}, {name}: {best['processes']} proc x "
                f"{best['threads']} thread, batch {best['batch']}, {best['feed']}: "
                f"{best['images_per_s']:.1f} img/s"
            )
    for precision in PRECISIONS:
        job = figures["jobs"][precision]
        lines.append(
            f"(b) fruits-pipeline --precision {precision}, featurize stage: "
            f"{job['featurize_images_per_s']:.1f} img/s; peak RSS (MB) {job['peak_rss_mb']}"
        )
    gate = figures["jobs"][INT8]["quantization"] or {}
    lines.append(f"int8 quantization + gate before the model pass: {gate}")
    for name, value in figures["ratios"].items():
        target = TARGETS.get(name)
        verdict = "" if target is None else f" (target >= {target}: "
        verdict += "" if target is None else ("met)" if value >= target else "NOT MET)")
        lines.append(f"ratio {name}: {value:.2f}x{verdict}")
    return "\n".join(lines)

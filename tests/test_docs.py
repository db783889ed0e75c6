"""benchmarks/docs.py: docs/performance.md is what the results files give, each section judges
its targets from its own figures, and a results file without a renderer is refused."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks import docs

pytestmark = pytest.mark.unit

MACHINE = "x86_64, 2 cores (Test CPU), 3.11.7"
LOAD = {"start": [0.3, 0.4, 0.5], "end": [1.9, 1.1, 0.7], "waited_s": 0.0}
VERDICT_ROW = re.compile(r"^\| (.+?) \| [^|]+ \| [^|]+ \| (met|\*\*NOT MET\*\*) \|$", re.M)


def verdicts(markdown: str) -> dict[str, str]:
    """``{target name: "met" or "NOT MET"}`` from the targets tables in ``markdown``."""
    return {name: verdict.strip("*") for name, verdict in VERDICT_ROW.findall(markdown)}


def trial(processes: int, threads: int, batch: int, rate: float) -> dict[str, Any]:
    return {
        "engine": "openvino",
        "processes": processes,
        "threads": threads,
        "batch": batch,
        "feed": "distinct batches",
        "images_per_s": rate,
    }


def raw(*trials: dict[str, Any]) -> dict[str, Any]:
    return {"best": max(trials, key=lambda t: t["images_per_s"]), "trials": list(trials)}


def job(images: int, featurize: float, worker_mb: float, **timings: float) -> dict[str, Any]:
    """A job run's figures as the benchmarks record them: the whole job after start-up at 0.8
    of the featurize stage's rate."""
    return {
        "engine": "openvino",
        "images": images,
        "batch_size": 1,
        "featurize_images_per_s": featurize,
        "job_images_per_s": 0.8 * featurize,
        "job_seconds_after_startup": images / (0.8 * featurize),
        "process_wall_s": images / (0.8 * featurize) + 20,
        "read_partitions": 10,
        "k": 50,
        "timings_s": {"start workers": 2.0, "featurize": images / featurize, **timings},
        "peak_rss_mb": {"driver_python": 800.0, "driver_jvm": 900.0, "python_worker": worker_mb},
    }


def throughput(featurize: float) -> dict[str, Any]:
    """throughput.json's shape: raw Keras at 100 img/s, raw OpenVINO at 120, the job's
    featurize stage at ``featurize``; the workers' memory within its targets."""
    startup = {"peak_rss_mb": 300.0, "startup_s": 1.0, "startup_trials_s": [1.0, 1.1, 0.9]}
    return {
        "machine": MACHINE,
        "default_engine": "openvino",
        "load_average": LOAD,
        "worker_startup": {"openvino": startup, "tensorflow": {**startup, "startup_s": 6.0}},
        "ours_memory_n": job(200, featurize, 390.0),
        "ours": job(800, featurize, 400.0),
        "ours_tensorflow_memory_n": job(200, featurize / 2, 880.0),
        "ours_tensorflow": job(800, featurize / 2, 900.0),
        "raw_openvino": raw(trial(1, 2, 8, 120.0), trial(2, 1, 8, 90.0), trial(2, 1, 1, 95.0)),
        "raw_model": raw(trial(2, 1, 8, 100.0)),
        "classic": {"images": 800, "process_wall_s": 400.0},
    }


def precision(f32_job: float, int8_job: float) -> dict[str, Any]:
    """precision.json's shape: raw f32 at 100 img/s (90 decoding in the loop), raw int8 at 300,
    the jobs' featurize stages at ``f32_job`` and ``int8_job``."""
    jobs = {
        "f32": {**job(100, f32_job, 380.0, precision=0.0), "quantization": None},
        "int8": {**job(100, int8_job, 320.0, precision=5.0), "quantization": GATE},
    }
    return {
        "machine": MACHINE,
        "load_average": LOAD,
        "precision": {
            "images": 100,
            "calibration_images": 30,
            "raw": {
                "f32": {
                    **raw(trial(2, 1, 1, 100.0)),
                    "best_decoded_in_loop": {**trial(2, 1, 1, 90.0), "feed": "decoded in the loop"},
                },
                "int8": raw(trial(2, 1, 16, 300.0)),
            },
            "jobs": jobs,
            "ratios": {
                "f32 job featurize / raw f32": f32_job / 100.0,
                "f32 job featurize / raw f32 decoding in the loop": f32_job / 90.0,
                "int8 job featurize / f32 job featurize": int8_job / f32_job,
                "raw int8 / raw f32": 3.0,
            },
        },
    }


GATE = {
    "calibration_images": 30,
    "gate_images": 20,
    "mean_cosine": 0.97,
    "worst_cosine": 0.94,
    "probe_agreement": 1.0,
    "probe_accuracy_f32": 1.0,
    "probe_accuracy_int8": 1.0,
    "thresholds": {
        "mean_cosine": 0.95,
        "worst_cosine": 0.8,
        "probe_agreement": 0.95,
        "probe_test_images": 40,
    },
    "seconds": 4.0,
}


def incremental(b_seconds: float) -> dict[str, Any]:
    """incremental.json's shape: two pairs, B taking ``b_seconds`` after start-up, C 40 s."""
    b = {"after_startup": b_seconds, "with_listing": b_seconds + 2, "process": b_seconds + 20}
    c = {"after_startup": 40.0, "with_listing": 41.0, "process": 60.0}
    stages = {"list input": 2.0, "featurize": 3.0, "fit scaler + PCA": 1.0}
    return {
        "machine": MACHINE,
        "load_average": LOAD,
        "n_first": 1000,
        "new": 100,
        "repeats": 2,
        "incremental_s": [b, b],
        "full_s": [c, c],
        "incremental_counts": {"model_runs": 100, "reused": 1000, "featurized_new": 100},
        "incremental_timings_s": [stages, stages],
        "full_timings_s": [stages, stages],
    }


@pytest.mark.parametrize(
    ("featurize", "speed"), [(200.0, "met"), (50.0, "NOT MET")], ids=["met", "not-met"]
)
def test_throughput_targets_are_judged_from_the_figures(featurize: float, speed: str) -> None:
    page = docs.render_throughput(throughput(featurize))
    assert verdicts(page) == {
        "featurize / raw Keras": speed,
        "featurize / raw OpenVINO": speed,
        "whole job after start-up / raw Keras": speed,
        "Python worker peak RSS / the tensorflow engine's": "met",
        "Python worker peak RSS growth, N = 200 to 800": "met",
    }
    assert ("Why the speed targets are not met" in page) == (speed == "NOT MET")


@pytest.mark.parametrize(
    ("f32_job", "int8_job", "expected"),
    [(95.0, 200.0, "met"), (50.0, 60.0, "NOT MET")],
    ids=["met", "not-met"],
)
def test_precision_targets_are_judged_from_the_figures(
    f32_job: float, int8_job: float, expected: str
) -> None:
    page = docs.render_precision(precision(f32_job, int8_job))
    assert verdicts(page) == {
        "f32 job featurize / raw f32": expected,
        "int8 job featurize / f32 job featurize": expected,
    }
    assert ("Why the speed targets are not met" in page) == (expected == "NOT MET")


def test_one_missed_precision_target_is_named_alone() -> None:
    page = docs.render_precision(precision(50.0, 200.0))
    assert verdicts(page)["int8 job featurize / f32 job featurize"] == "met"
    assert "**Why the target `f32 job featurize / raw f32` is not met.**" in page
    assert "Why the speed targets" not in page


@pytest.mark.parametrize(
    ("b_seconds", "expected"), [(10.0, "met"), (30.0, "NOT MET")], ids=["met", "not-met"]
)
def test_incremental_target_is_judged_from_the_figures(b_seconds: float, expected: str) -> None:
    page = docs.render_incremental(incremental(b_seconds))
    assert verdicts(page) == {"B / C after start-up": expected}
    assert f"| **B / C** (sums) | {b_seconds / 40:.2f}x |" in page


def incremental_table(larger_s: float) -> dict[str, Any]:
    """incremental_table.json's shape: 1,000 and 4,000 photos, the smaller's incremental run
    20 s after start-up, the larger's ``larger_s``."""
    stages = {"list": 2.0, "featurize": 3.0, "fit": 1.0}

    def size(incremental_s: float, photos: int) -> dict[str, Any]:
        return {
            "first_s": 60.0,
            "incremental_s": incremental_s,
            "full_s": 80.0,
            "incremental_over_full": incremental_s / 80.0,
            "incremental_model_runs": 100,
            "incremental_reused": photos,
            "incremental_timings_s": stages,
        }

    return {
        "machine": MACHINE,
        "load_average": LOAD,
        "sizes": [1000, 4000],
        "new": 100,
        "runs": {"1000": size(20.0, 1000), "4000": size(larger_s, 4000)},
        "ratio": larger_s / 20.0,
    }


@pytest.mark.parametrize(("larger_s", "expected"), [(24.0, "met"), (30.0, "NOT MET")])
def test_incremental_table_target_is_judged_from_the_figures(
    larger_s: float, expected: str
) -> None:
    page = docs.render_incremental_table(incremental_table(larger_s))
    assert verdicts(page) == {"incremental run, 4,000 / 1,000, after start-up": expected}
    assert "model on 100, 4,000 reused" in page


def probe_share(after_s: float) -> dict[str, Any]:
    """probe_share.json's shape: 90 s of other stages; the probe after takes ``after_s``."""

    def probe(seconds: float, rows: int) -> dict[str, Any]:
        return {"seconds": seconds, "probe": {"train_rows": rows, "accuracy": 0.98}}

    return {
        "machine": MACHINE,
        "load_average": LOAD,
        "rows": 65000,
        "run_images": 3936,
        "other_stages_s_scaled": 90.0,
        "before": probe(60.0, 48000),
        "after": probe(after_s, 12000),
        "share_before": 0.4,
        "share_after": after_s / (90.0 + after_s),
    }


@pytest.mark.parametrize(("after_s", "expected"), [(5.0, "met"), (20.0, "NOT MET")])
def test_probe_share_target_is_judged_from_the_figures(after_s: float, expected: str) -> None:
    page = docs.render_probe_share(probe_share(after_s))
    assert verdicts(page) == {"the probe's share of the job, after": expected}
    assert "| before | 48,000 | 60.0 | 40.0% | 0.9800 |" in page


def test_sections_without_targets_render_their_figures_and_no_verdict() -> None:
    """accounting.json records no machine or load average; scale.json has no target."""
    accounting = {
        "results": [
            {"rows": rows, "approach": approach, "seconds": 1.0, "driver_python_peak_mb": mb}
            for approach, rows, mb in (("spark", 10, 100.0), ("spark", 100, 101.0))
        ]
    }
    page = docs.render_accounting(accounting)
    assert "--sizes 10 100" in page and "| 101.0 MB | +1.0% |" in page
    scale = {"machine": MACHINE, "load_average": LOAD, "scale": job(900, 90.0, 400.0)}
    page += docs.render_scale(scale)
    assert "--scale 900" in page and "**90.0 img/s**" in page
    assert verdicts(page) == {}


def test_the_committed_page_is_what_the_results_give() -> None:
    assert docs.check(docs.RESULTS, docs.PAGE) is None
    assert docs.main(["--check"]) == 0
    assert docs.PAGE.read_text().startswith(f"{docs.BANNER}\n")


def test_a_stale_page_is_reported(tmp_path: Path) -> None:
    stale = tmp_path / "performance.md"
    stale.write_text(docs.PAGE.read_text().replace("## Incremental runs", "## Incremental"))
    problem = docs.check(docs.RESULTS, stale)
    assert problem is not None and "make docs" in problem and "+## Incremental runs" in problem


def test_a_results_file_without_a_renderer_is_reported(tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(docs.RESULTS, results)
    (results / "new_benchmark.json").write_text(json.dumps({"machine": MACHINE}))
    (results / "scale.json").unlink()
    problem = docs.check(results, docs.PAGE)
    assert problem is not None
    assert "new_benchmark.json has no renderer" in problem
    assert "names scale.json, which benchmarks/results/ lacks" in problem
    with pytest.raises(docs.UnmatchedResults, match=r"new_benchmark\.json"):
        docs.render(docs.load_results(results))

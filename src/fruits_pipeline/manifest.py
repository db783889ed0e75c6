"""``manifest.json``: the schema of a run's record, as typed sections, and its JSON form.

The job fills a ``Manifest`` stage by stage and writes it last; the CLI's summary, the report and
the benchmarks read it back with ``Manifest.from_json``, so a key exists in one place only. The
JSON layout is the one documented in the README ("Outputs"): sections a run did not reach
(a failed run has no ``reduction``) are left out, never written as empty.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without its None values, nested dicts included (fields a run does not have)."""
    return {
        k: _without_none(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None
    }


@dataclass(frozen=True)
class LabelCounts:
    """Files of one label: ``files_seen == featurized + errors``. Incremental runs add
    ``reused`` (outcomes carried over from the previous run), ``featurized_new`` (featurized
    this run) and ``removed`` (the previous run's files no longer listed); None otherwise."""

    files_seen: int
    featurized: int
    errors: int
    reused: int | None = None
    featurized_new: int | None = None
    removed: int | None = None


@dataclass(frozen=True)
class Counts:
    """What became of every listed file, in all and per label (labels sorted).

    ``model_runs``: rows the featurize UDF received this run (each runs the model unless its
    bytes do not decode), counted in the UDF itself. ``errors_by_kind``: ``{error_kind: files}``,
    most frequent first. The incremental fields as in ``LabelCounts``.
    """

    files_seen: int
    featurized: int
    errors: int
    per_label: dict[str, LabelCounts]
    reused: int | None = None
    featurized_new: int | None = None
    removed: int | None = None
    model_runs: int | None = None
    errors_by_kind: dict[str, int] | None = None

    @classmethod
    def from_per_label(
        cls,
        per_label: dict[str, LabelCounts],
        model_runs: int | None = None,
        errors_by_kind: dict[str, int] | None = None,
    ) -> Counts:
        ordered = dict(sorted(per_label.items()))

        def total(name: str) -> int | None:
            values = [getattr(c, name) for c in ordered.values()]
            return None if any(v is None for v in values) else sum(values)

        return cls(
            files_seen=sum(c.files_seen for c in ordered.values()),
            featurized=sum(c.featurized for c in ordered.values()),
            errors=sum(c.errors for c in ordered.values()),
            per_label=ordered,
            reused=total("reused"),
            featurized_new=total("featurized_new"),
            removed=total("removed"),
            model_runs=model_runs,
            errors_by_kind=errors_by_kind,
        )

    @property
    def images_per_label(self) -> dict[str, int]:
        """``{label: featurized}``: the images each label contributes to the features."""
        return {label: counts.featurized for label, counts in self.per_label.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Counts:
        per_label = {label: LabelCounts(**c) for label, c in data["per_label"].items()}
        return cls(**{**data, "per_label": per_label})


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights the model ran with: ``source`` as given (``imagenet``, a path, an s3://
    URI) and the sha256 of the file read."""

    source: str
    sha256: str


@dataclass(frozen=True)
class ResidencyInfo:
    """The EU guard's verdict: the regions allowed, the region the job ran in (None off AWS,
    for a local run that touches no bucket) and ``{bucket: region}`` it checked."""

    allowed_regions: list[str]
    region: str | None
    buckets: dict[str, str]


@dataclass(frozen=True)
class ReductionSummary:
    """How k was chosen. ``cumulative_variance[i]`` is the share kept by ``i + 1`` components;
    it and ``achieved_variance`` are None (with ``note``) when there is no variance at all."""

    k: int
    k_rule: str
    target_variance: float
    achieved_variance: float | None
    cumulative_variance: list[float] | None
    note: str | None


@dataclass(frozen=True)
class ClassifierScore:
    """One classifier of the probe: test accuracy and macro F1 (shares in [0, 1]) and the
    seconds its ``fit`` took on the probe's training rows."""

    name: str
    accuracy: float
    macro_f1: float
    train_seconds: float


@dataclass(frozen=True)
class ProbeSummary:
    """The probe (``probe.py``): ``status`` succeeded with its scores, or skipped with the
    ``reason``.

    ``train_images`` and ``test_images`` are the images on each side of the split;
    ``train_rows`` the training rows the classifiers were fitted on (at most
    ``train_rows_per_class`` per label, a seeded sample). ``accuracy``, ``macro_f1``,
    ``per_class_recall`` and ``confusion_matrix`` (``{"labels": [...], "matrix": rows true}``)
    are the logistic regression's; ``classifiers`` scores every classifier, that one first.
    """

    status: str
    reason: str | None = None
    split: str | None = None
    train_images: int | None = None
    test_images: int | None = None
    train_rows: int | None = None
    train_rows_per_class: int | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    per_class_recall: dict[str, float] | None = None
    confusion_matrix: dict[str, Any] | None = None
    classifiers: list[ClassifierScore] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeSummary:
        scores = data.get("classifiers")
        if scores is None:
            return cls(**data)
        return cls(**{**data, "classifiers": [ClassifierScore(**s) for s in scores]})

    @property
    def detail(self) -> str:
        """One line for the progress output: the accuracy, or why there is none."""
        if self.status != SUCCEEDED:
            return self.reason or self.status
        scores = ", ".join(
            f"{s.name.replace('_', ' ')} {s.accuracy:.4f}" for s in self.classifiers or []
        )
        return f"test accuracy {scores or f'{self.accuracy:.4f}'} ({self.split})"


@dataclass(frozen=True)
class ModelRunInfo:
    """``project``'s source of scaler + PCA: the run, its k, and the sha256 of the weights its
    features were made with (equal to this run's, or the run was refused)."""

    run: str
    k: int
    weights_sha256: str


@dataclass(frozen=True)
class QuantizationSummary:
    """How ``--precision int8`` made and checked its model: the images it was calibrated on, the
    quality gate's images and figures (``gate.py``: int8 features' cosine similarity to f32,
    mean and worst; the quick probe's agreement and accuracies, None without a probe), the
    thresholds they passed, and the driver's seconds for quantizing and judging."""

    precision: str
    calibration_images: int
    gate_images: int
    mean_cosine: float
    worst_cosine: float
    probe_agreement: float | None
    probe_accuracy_f32: float | None
    probe_accuracy_int8: float | None
    thresholds: dict[str, float]
    seconds: float


@dataclass(frozen=True)
class Throughput:
    """Images per second of the featurize stage and of the whole job after start-up."""

    featurize_images_per_s: float
    job_seconds_after_startup: float
    job_images_per_s: float


@dataclass(frozen=True)
class CollectionInfo:
    """A run with ``--table``: the collection and what the run did to it.

    ``snapshot``: the ``features`` snapshot its moments and fit describe (time travel to it
    reproduces the fit); ``rows``: the collection's photos then; ``removed``: rows deleted
    (files gone or changed); ``featurized`` / ``chunks``: the committed model pass;
    ``refitted``: whether this run fitted (``--refit``); ``drift``: the new photos' fit
    quality under the model before this run, against its fitted photos (``drift.py``), None
    when there was no model; ``previous_snapshot``: the snapshot the moments were brought
    forward from (None: the collection's first run, or that snapshot was expired since and the
    moments were summed again from every row).
    """

    table: str
    snapshot: int | None
    rows: int
    removed: int
    featurized: int
    chunks: int
    refit: str
    refitted: bool
    drift: dict[str, Any] | None = None
    previous_snapshot: int | None = None


@dataclass(frozen=True)
class Manifest:
    """One run's record. ``status`` is ``succeeded`` only once every other output is written;
    ``failed`` comes with ``error``. ``config`` is the ``JobConfig`` as a dict."""

    status: str
    started_at: str
    input: str
    output: str
    config: dict[str, Any]
    weights: WeightsInfo
    read_partitions: int
    residency: ResidencyInfo
    versions: dict[str, str]
    incremental_from: str | None = None
    model_run: ModelRunInfo | None = None
    quantization: QuantizationSummary | None = None
    collection: CollectionInfo | None = None
    counts: Counts | None = None
    reduction: ReductionSummary | None = None
    probe: ProbeSummary | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    throughput: Throughput | None = None
    outputs: dict[str, str] | None = None
    finished_at: str | None = None
    error: str | None = None

    @property
    def extractor(self) -> str:
        """The feature extractor the run used (runs from before the choice used MobileNetV2)."""
        return str(self.config.get("extractor", "mobilenet_v2"))

    def with_(self, **changes: Any) -> Manifest:
        """A copy with ``changes`` (the manifest is immutable; stages add sections)."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``manifest.json`` (sections not reached left out)."""
        data: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None:
                continue
            if item.name in ("probe", "counts"):
                value = _without_none(asdict(value))
            elif hasattr(value, "__dataclass_fields__"):
                value = asdict(value)
            data[item.name] = value
            if item.name == "counts":
                data["images_per_label"] = self.counts.images_per_label  # type: ignore[union-attr]
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """Read a ``manifest.json`` object back (unknown keys, such as ``images_per_label``,
        which is derived from ``counts``, are ignored)."""
        sections: dict[str, Any] = {
            "weights": WeightsInfo,
            "residency": ResidencyInfo,
            "reduction": ReductionSummary,
            "throughput": Throughput,
            "model_run": ModelRunInfo,
            "quantization": QuantizationSummary,
            "collection": CollectionInfo,
        }
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name not in data:
                continue
            value = data[item.name]
            if item.name in ("counts", "probe"):
                value = (Counts if item.name == "counts" else ProbeSummary).from_json(value)
            elif item.name in sections:
                value = sections[item.name](**value)
            values[item.name] = value
        return cls(**values)

    @classmethod
    def loads(cls, text: str) -> Manifest:
        return cls.from_json(json.loads(text))

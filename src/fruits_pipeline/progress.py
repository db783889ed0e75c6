"""Progress a person can follow: one line when a stage starts, one when it ends, task counts
while a long Spark stage runs, and the run's timings for the manifest."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO


class Progress:
    """Prints timestamped progress lines and records each stage's duration in seconds."""

    def __init__(self, stream: TextIO | None = None, stages: Sequence[str] = ()) -> None:
        """``stages``: every stage's key in order; a stage is numbered by its place there
        (a stage not listed is numbered in the order it runs)."""
        self.stream = stream or sys.stdout
        self.stages = tuple(stages)
        self.timings: dict[str, float] = {}
        self._index = 0

    def say(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        print(f"[fruits-pipeline {stamp}] {message}", file=self.stream, flush=True)

    @contextmanager
    def stage(self, key: str, label: str | None = None) -> Iterator[dict[str, Any]]:
        """Time a stage: its seconds go to ``timings[key]``; the lines print ``label`` (default:
        the key). The caller may put ``images`` (a count) or ``detail`` (text) in the yielded
        dict; both are shown on the closing line."""
        self._index += 1
        name = label or key
        if key in self.stages:
            position = f"{self.stages.index(key) + 1}/{len(self.stages)}"
        else:
            position = str(self._index)
        self.say(f"({position}) {name} ...")
        info: dict[str, Any] = {}
        start = time.perf_counter()
        yield info
        seconds = time.perf_counter() - start
        self.timings[key] = round(seconds, 3)
        closing = f"({position}) {name} done in {seconds:.1f} s"
        if info.get("images"):
            closing += f": {info['images']} images, {info['images'] / max(seconds, 1e-9):.1f} img/s"
        if info.get("detail"):
            closing += f" ({info['detail']})"
        self.say(closing)

    @contextmanager
    def watch_tasks(self, spark_context: Any, every_seconds: float = 15.0) -> Iterator[None]:
        """While the block runs, print the active Spark stages' task counts every few seconds."""
        stop = threading.Event()

        def report() -> None:
            tracker = spark_context.statusTracker()
            while not stop.wait(every_seconds):
                for stage_id in tracker.getActiveStageIds():
                    info = tracker.getStageInfo(stage_id)
                    if info is not None:
                        self.say(
                            f"    tasks {info.numCompletedTasks}/{info.numTasks} done, "
                            f"{info.numActiveTasks} running"
                        )

        watcher = threading.Thread(target=report, name="progress", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()

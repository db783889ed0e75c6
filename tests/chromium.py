"""Headless Chromium for the tests that look at the HTML report as a user's browser draws it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from PIL import Image


def screenshot(page: str, shot: Path, size: tuple[int, int]) -> Image.Image:
    """``page`` (a URI) drawn by headless Chromium into ``shot`` at ``size`` (width, height);
    fails on a script error in the page's console. With ``REPORT_SHOTS`` set to a folder, the
    picture is kept there too."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: `make test` installs it"
    completed = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            f"--user-data-dir={shot.parent / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--virtual-time-budget=3000",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={shot}",
            page,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    console = [line for line in completed.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console  # a script error would show here
    kept = os.environ.get("REPORT_SHOTS")
    if kept:
        shutil.copy(shot, Path(kept) / shot.name)
    return Image.open(shot).convert("RGB")

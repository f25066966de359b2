"""The real browser of the web-client tests: Debian's chromium driven by Playwright, fake camera and
microphone. The `browser` fixture is in tests/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
# `make screenshots` refreshes docs/screenshots (LIVECLASS_SCREENSHOTS_DIR); a plain test run takes no pictures.
TAKING_SCREENSHOTS = bool(os.environ.get("LIVECLASS_SCREENSHOTS_DIR"))
SCREENSHOTS = Path(os.environ.get("LIVECLASS_SCREENSHOTS_DIR", "/tmp/liveclass-screenshots"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]

# How long Playwright's `expect` waits for a page to show something (its default is 5 s).
BROWSER_EXPECT_SECONDS = 15

# Without chromium the browser tests say so and skip — except in CI, which must install it.
needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (apt-get install chromium)",
)


async def screenshot(target: Any, path: Path, **options: Any) -> None:
    """A picture of a page or locator for docs/screenshots, taken only under `make screenshots`. A plain run
    kept them in /tmp, where nobody looked, at a cost: in tests/test_web_client.py the pictures took 10 s of
    chromium's 68 s of CPU (its browser process: 34.6 s with them, 24.6 s without)."""
    if TAKING_SCREENSHOTS:
        path.parent.mkdir(parents=True, exist_ok=True)
        await target.screenshot(path=path, **options)

"""The real browser of the web-client tests: Debian's chromium driven by Playwright, fake camera and
microphone. The `browser` fixture is in tests/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# `make screenshots` refreshes docs/screenshots; a plain test run keeps its pictures out of the tree.
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

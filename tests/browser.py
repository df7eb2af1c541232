"""Headless Chromium for browser tests, fully offline.

Selenium drives the Debian ``chromium`` through ``/usr/bin/chromedriver`` given explicitly, with
``SE_OFFLINE=true``, so Selenium Manager never downloads a driver or a browser. Use it as::

    from browser import headless_chromium, require_chromium

    def test_page(tmp_path):
        require_chromium()
        with headless_chromium(tmp_path / "profile") as driver:
            driver.get(page.as_uri())
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: no sandbox (containers), no GPU, and nothing that talks to the network on its own
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

INSTALL_HINT = "apt-get install -y chromium chromium-driver"


def chromium_missing() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is absent ({INSTALL_HINT})"
    if not CHROMEDRIVER.is_file():
        return f"{CHROMEDRIVER} is absent ({INSTALL_HINT})"
    return None


def require_chromium() -> None:
    """Skip the calling test, with the reason, when Chromium or its driver is not installed."""
    reason = chromium_missing()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")


@contextmanager
def headless_chromium(
    user_data_dir: Path, width: int = 1280, height: int = 900
) -> Iterator[Any]:
    """A selenium Chrome driver on headless Chromium with a fresh profile in ``user_data_dir``;
    quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    previous = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"  # belt and braces: Selenium Manager must never download
    user_data_dir.mkdir(parents=True, exist_ok=True)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument(f"--window-size={width},{height}")
    driver = None
    try:
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        if previous is None:
            os.environ.pop("SE_OFFLINE", None)
        else:
            os.environ["SE_OFFLINE"] = previous

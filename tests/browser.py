"""Headless Chromium for the page tests (Debian's chromium and chromium-driver, via Selenium).

As root on a closed network Chromium needs --no-sandbox and no background networking; a new
empty profile per test keeps runs apart. Under CI a missing browser fails (``.ci/run`` installs
it); elsewhere the page tests are skipped with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def start_chromium(profile: Path, extra_flags: list[str] = (), prefs: dict | None = None):
    """A Selenium driver for a fresh headless Chromium with its profile in ``profile``."""
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver must be installed under CI (.ci/run installs them)")
        pytest.skip("no chromium/chromedriver: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, *extra_flags, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    if prefs:
        options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def wait_until(condition, seconds: float = 60):
    """``condition()``'s first truthy value within ``seconds`` (generous: CI and shared machines are slow)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError("the page did not get there in time")

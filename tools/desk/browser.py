"""Chromium headless, driven by Selenium through chromium-driver (Debian's chromium and
chromium-driver, `make system`): the browser of the desk's tests, screenshots and
benchmark. Selenium is a development dependency: the desk itself never imports this."""

from __future__ import annotations

import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

TOOLS = ("chromium", "chromedriver")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def headless_chromium(profile: Path, *flags: str) -> webdriver.Chrome:
    """A new silent headless chromium with its own profile folder; ``flags`` add to its
    command line (a window size, autoplay)."""
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio", "--disable-gpu",
                 f"--user-data-dir={profile}", *flags):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)

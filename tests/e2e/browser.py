"""Debian's headless Chromium for the browser tests: where it is, whether the tests can run, and one way to start
it (the flags this machine needs: no sandbox as root, no background networking, a profile of the test's own)."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NEEDS_CHROMIUM = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian packages chromium, chromium-driver; see the Makefile)",
)
BASE_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@contextmanager
def chromium(
    profile: Path, window: str, extra: Sequence[str] = (), capabilities: dict[str, Any] | None = None
) -> Iterator[WebDriver]:
    """A headless Chromium with a `window` like "1400,2000", quit on exit."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*BASE_ARGUMENTS, f"--window-size={window}", *extra, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    for name, value in (capabilities or {}).items():
        options.set_capability(name, value)
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    try:
        yield browser
    finally:
        browser.quit()

"""Intake's API docs in a real headless Chromium that cannot reach anything but loopback: Swagger UI (/docs) and
ReDoc (/redoc) render every operation of the OpenAPI document, and no request of either page leaves 127.0.0.1.

Names resolve to nothing but 127.0.0.1 (`--host-resolver-rules`), and every other address goes to a proxy that is
not there, so a page that needs a CDN stays blank here, as on a machine without internet. Every request the page
made is read back from Chromium's performance log. Screenshots go to one folder (printed).
"""

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.command import Command
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.browser import NEEDS_CHROMIUM, chromium
from tests.support import Infra, free_port
from tests.world import new_namespace, running_world

pytestmark = NEEDS_CHROMIUM
WAIT_S = 30
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-error"}
CDN = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"  # where FastAPI's own /docs loads from


@dataclass(frozen=True)
class Intake:
    url: str
    operations: int  # in the OpenAPI document
    title: str
    screenshots: Path


@pytest.fixture(scope="module")
async def intake(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Intake]:
    async with running_world(new_namespace(infra), tmp_path_factory.mktemp("api-docs-logs"), names=["intake"]) as w:
        spec: dict[str, Any] = (await w.http.get("/openapi.json")).json()
        operations = sum(len(item) for item in spec["paths"].values())
        shots = tmp_path_factory.mktemp("api-docs-screenshots")
        print(f"\nAPI docs screenshots: {shots}")
        yield Intake(w.url, operations, spec["info"]["title"], shots)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    # Offline but for loopback: no name resolves elsewhere, and any other address goes to a dead local proxy
    # (Chromium never proxies loopback).
    offline = (
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--proxy-server=http://127.0.0.1:{free_port()}",
    )
    logs = {"goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"}}
    with chromium(tmp_path / "chromium-profile", "1400,2000", offline, logs) as browser:
        yield browser


@dataclass(frozen=True)
class Sent:
    url: str
    blocked: str | None  # why Chromium stopped it before it left the browser ("csp": the page's own policy)

    @property
    def left_loopback(self) -> bool:
        """Went, or would have gone, to another machine (a name mapped to nothing still counts)."""
        where = urlsplit(self.url)
        return where.scheme not in LOCAL_SCHEMES and where.hostname not in LOOPBACK and self.blocked != "csp"


def log(driver: WebDriver, kind: str) -> list[dict[str, Any]]:
    """Chromium's `kind` log since the last read (selenium's `get_log`, which is untyped)."""
    entries: list[dict[str, Any]] = driver.execute(Command.GET_LOG, {"type": kind})["value"]
    return entries


def requested(driver: WebDriver) -> list[Sent]:
    """Every request the page made since the last call (Chromium's DevTools events, from the performance log)."""
    urls: dict[str, str] = {}
    blocked: dict[str, str] = {}
    for entry in log(driver, "performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = str(params["request"]["url"])
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            blocked[params["requestId"]] = str(params["blockedReason"])
    return [Sent(url, blocked.get(request_id)) for request_id, url in urls.items()]


def off_loopback(sent: list[Sent]) -> list[str]:
    return [s.url for s in sent if s.left_loopback]


def errors(driver: WebDriver) -> list[str]:
    """What the page logged as an error (a script that failed, a resource the policy refused...) since the last call."""
    return [str(entry["message"]) for entry in log(driver, "browser") if entry["level"] == "SEVERE"]


def count_of(driver: WebDriver, css: str, expected: int, what: str) -> int:
    """Waits until `css` matches `expected` elements; on the deadline, fails with what the page shows instead."""
    try:
        WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, css)) >= expected
        )
    except TimeoutException:
        shown = driver.find_element(By.TAG_NAME, "body").text[:2000]
        found = len(driver.find_elements(By.CSS_SELECTOR, css))
        raise AssertionError(f"{what}: {found} of {expected}\n{shown}") from None
    return len(driver.find_elements(By.CSS_SELECTOR, css))


def test_swagger_ui_renders_every_operation_offline(intake: Intake, driver: WebDriver) -> None:
    driver.get(f"{intake.url}/docs")
    shown = count_of(driver, ".opblock", intake.operations, "operations shown by Swagger UI")
    assert shown == intake.operations
    title = driver.find_element(By.CSS_SELECTOR, ".info .title").text
    assert intake.title in title, title
    assert not driver.find_elements(By.CSS_SELECTOR, ".errors-wrapper"), "Swagger UI reports errors in the document"
    driver.save_screenshot(str(intake.screenshots / "swagger-ui.png"))
    sent = requested(driver)
    urls = [s.url for s in sent]
    assert f"{intake.url}/docs/assets/swagger-ui-bundle.js" in urls, urls
    assert f"{intake.url}/openapi.json" in urls, urls
    assert off_loopback(sent) == [], f"requests that left loopback: {off_loopback(sent)}"
    assert errors(driver) == []


def test_an_operation_opens_with_its_problem_answers(intake: Intake, driver: WebDriver) -> None:
    driver.get(f"{intake.url}/docs")
    count_of(driver, ".opblock", intake.operations, "operations shown by Swagger UI")
    driver.find_element(By.CSS_SELECTOR, "#operations-service_requests-submit_request_v1_service_requests_post").click()
    codes = count_of(driver, ".opblock.is-open .responses-table .response-col_status", 5, "documented answers")
    statuses = {e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, ".opblock.is-open .response-col_status")}
    assert {"400", "415", "422"} <= statuses, statuses
    assert codes >= 5
    driver.save_screenshot(str(intake.screenshots / "swagger-ui-operation.png"))
    assert off_loopback(requested(driver)) == []


def test_redoc_renders_every_operation_offline(intake: Intake, driver: WebDriver) -> None:
    driver.get(f"{intake.url}/redoc")
    css = "[data-section-id^='operation/']"  # one per operation (the menu and the tag sections wrap them)
    shown = count_of(driver, css, intake.operations, "operations shown by ReDoc")
    assert shown == intake.operations
    driver.save_screenshot(str(intake.screenshots / "redoc.png"))
    sent = requested(driver)
    assert f"{intake.url}/docs/assets/redoc.standalone.js" in [s.url for s in sent], sent
    assert off_loopback(sent) == [], f"requests that left loopback: {off_loopback(sent)}"
    # ReDoc asks for its vendor's logo on a CDN: the page's policy stops it in the browser, and nothing else fails.
    assert {s.url for s in sent if s.blocked == "csp"} <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, sent
    assert [e for e in errors(driver) if "logo-mini.svg" not in e] == []


def test_this_browser_cannot_reach_a_cdn(intake: Intake, driver: WebDriver) -> None:
    """The check above means something only if a page that needs a CDN would fail here, as it does offline."""
    driver.get(f"{intake.url}/docs/assets/favicon.png")
    driver.set_script_timeout(WAIT_S)
    outcome = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {mode: 'no-cors'}).then(() => done('loaded'), (e) => done('failed: ' + e));",
        CDN,
    )
    assert str(outcome).startswith("failed"), outcome

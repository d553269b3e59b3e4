"""The operator console in a real headless Chromium, against intake, matching and notifications on the real
broker and database: sign-in, the funnel of a seeded run, the charts (funnel, lag and backlog history, webhook
success) against the API's numbers, replaying a dead letter, assigning an unmatched referral, CSRF refusal, key
revocation and sign-out. Screenshots of every step go to one folder (printed)."""

import contextlib
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pymongo import AsyncMongoClient
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from starlette.applications import Starlette
from starlette.routing import Route

from goglobal_shared.kafka import make_producer
from intake.console.data import FUNNEL_STEPS
from tests import factories
from tests.e2e.browser import NEEDS_CHROMIUM, chromium
from tests.support import Infra, eventually
from tests.webhook_receiver import Receiver
from tests.world import World, bearer, key_id, new_namespace, running_world

pytestmark = NEEDS_CHROMIUM
OPERATOR_NAME = "console-operator"
GARBAGE_EVENT_ID = "console-e2e-garbage"
BOOKS_NAME = "Books & <b>Co</b>"  # markup in a partner name must show as text, in the tables and in the charts
WAIT_S = 20


@dataclass
class Seeded:
    """What the module's world was seeded with, and where the screenshots go."""

    referrals: dict[str, str]  # "completed", "offered", "unmatched" -> referral id
    letter_id: str
    screenshots: Path
    announced: bool = False  # the screenshot folder was printed


async def _seed(world: World, hooks: dict[str, Receiver]) -> dict[str, str]:
    """Three referrals: one completed by its partner, one offered, one that no partner covers (unmatched).
    console-legal's webhook endpoint takes every delivery; console-books' refuses them all (400: no retry)."""
    await world.add_partner("console-legal", ["legal"], ["AE"], hooks["console-legal"])
    await world.add_partner("console-books", ["accounting"], ["GB"], hooks["console-books"], name=BOOKS_NAME)
    done = await world.refer("legal", ["AE"])
    offered = await world.refer("accounting", ["GB"])
    lost = await world.refer("marketing", ["IT"])
    await world.until(done, "offered")
    completion = {"outcome": "engaged", "notes": "DMCC set up"}
    for action, body in (("accept", None), ("start", None), ("complete", completion)):
        assert (await world.act("console-legal", done, action, body)).status_code == 200
    await world.until(offered, "offered")
    await world.until(lost, "unmatched")
    return {"completed": done, "offered": offered, "unmatched": lost}


async def _dead_letter(world: World) -> str:
    """A record that is no CloudEvent on the referrals topic: the consumers dead-letter it, intake collects it."""
    producer = make_producer(world.namespace.infra.kafka, "console-test")
    await producer.start()
    try:
        headers = [("ce_type", b"hk.goglobal.referral.submitted.v1"), ("ce_id", GARBAGE_EVENT_ID.encode())]
        await producer.send_and_wait(
            world.namespace.topic("goglobal.referrals"), b"not json", b"console-garbage", headers=headers
        )
    finally:
        await producer.stop()

    async def listed() -> str | None:
        answer = await world.http.get("/v1/dead-letters", params={"status": "open"}, headers=bearer(world.operator))
        return next((str(d["id"]) for d in answer.json() if d["event_id"] == GARBAGE_EVENT_ID), None)

    return await eventually(listed, "the garbage record among the open dead letters")


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[Receiver]:
    """The receiver on a thread of its own: the browser steps block the test's event loop, and a webhook endpoint
    that stopped answering meanwhile would turn deliveries into timeouts and retries."""
    app = Starlette(routes=[Route("/hooks", receiver.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=receiver.port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"webhook-receiver-{receiver.port}", daemon=True)
    thread.start()

    async def started() -> bool:
        return bool(server.started)

    try:
        await eventually(started, "the webhook receiver to listen", deadline_s=10, interval_s=0.01)
        yield receiver
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
async def console(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[World, Seeded]]:
    """The console reads every service's /readyz, /metrics and matching's partner load (GOGLOBAL_SERVICE_URLS)."""
    log_dir = tmp_path_factory.mktemp("console-logs")
    async with (
        running_world(new_namespace(infra), log_dir, operator_name=OPERATOR_NAME, console=True) as world,
        serving(Receiver()) as legal_hook,
        serving(Receiver(failing=400)) as books_hook,
    ):
        referrals = await _seed(world, {"console-legal": legal_hook, "console-books": books_hook})
        letter_id = await _dead_letter(world)
        yield world, Seeded(referrals, letter_id, tmp_path_factory.mktemp("console-screenshots"))


@pytest.fixture(scope="module")
def world(console: tuple[World, Seeded]) -> World:
    return console[0]


@pytest.fixture(scope="module")
def seeded(console: tuple[World, Seeded]) -> Seeded:
    return console[1]


class Camera:
    def __init__(self, driver: WebDriver, folder: Path, test_name: str) -> None:
        self.driver, self.folder, self.prefix, self.count = driver, folder, test_name.removeprefix("test_")[:40], 0

    def shot(self, step: str) -> None:
        self.count += 1
        self.driver.save_screenshot(str(self.folder / f"{self.prefix}-{self.count:02d}-{step}.png"))


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium(tmp_path / "chromium-profile", "1400,2600") as browser:  # tall enough for the whole dashboard
        yield browser


@pytest.fixture
def camera(
    driver: WebDriver, seeded: Seeded, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> Camera:
    if not seeded.announced:
        with capsys.disabled():
            print(f"\nconsole screenshots: {seeded.screenshots}")
        seeded.announced = True
    return Camera(driver, seeded.screenshots, request.node.name)


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, WAIT_S)


def sign_in(driver: WebDriver, world: World, key: str) -> None:
    driver.get(f"{world.url}/console/login")
    driver.find_element(By.ID, "api_key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


def sign_in_as_operator(driver: WebDriver, world: World) -> None:
    sign_in(driver, world, world.operator)
    wait(driver).until(ec.presence_of_element_located((By.ID, "funnel")))


def refresh_until(driver: WebDriver, check: Callable[[WebDriver], bool], what: str) -> None:
    """Reloads the page until `check` holds: what the console shows follows events it does not push."""

    def reloaded(d: WebDriver) -> bool:
        d.refresh()
        return check(d)

    WebDriverWait(driver, WAIT_S, poll_frequency=0.5).until(reloaded, f"timed out waiting for {what}")


def text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text).strip()


def console_cookie(driver: WebDriver) -> str:
    cookie = driver.get_cookie("goglobal_console")
    assert cookie is not None
    return str(cookie["value"])


async def test_pages_need_a_session_and_a_wrong_key_shows_an_error(
    world: World, driver: WebDriver, camera: Camera
) -> None:
    driver.get(f"{world.url}/console")
    wait(driver).until(ec.url_to_be(f"{world.url}/console/login"))
    camera.shot("login-page")

    for wrong in ("gg_0123456789abcdef_not-a-real-secret-at-all-not-a-real-secret-x", world.enterprise.key):
        sign_in(driver, world, wrong)
        error = wait(driver).until(ec.visibility_of_element_located((By.ID, "login-error")))
        assert "not a valid operator API key" in error.text
        assert wrong not in driver.page_source  # the key is never echoed, not even in the field
        assert driver.find_element(By.ID, "api_key").get_attribute("value") == ""
    camera.shot("wrong-key")

    answer = await world.http.get("/console")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    assert answer.headers["cache-control"] == "no-store"
    assert "default-src 'self'; style-src 'self'" in answer.headers["content-security-policy"]


async def api_funnel(world: World) -> dict[str, int]:
    """The funnel as the public API tells it: each referral's history actions, read one by one."""
    listed = await world.http.get("/v1/referrals", params={"limit": 100}, headers=bearer(world.operator))
    counts = dict.fromkeys(FUNNEL_STEPS, 0)
    for item in listed.json()["items"]:
        steps = await world.http.get(f"/v1/referrals/{item['id']}/history", headers=bearer(world.operator))
        actions = {step["action"] for step in steps.json()}
        for name in FUNNEL_STEPS:
            counts[name] += name in actions
    return counts


async def test_the_dashboard_shows_health_the_seeded_funnel_and_partner_load(
    world: World, driver: WebDriver, camera: Camera
) -> None:
    sign_in_as_operator(driver, world)
    assert text(driver, "#principal") == f"operator:{OPERATOR_NAME}"
    for name in ("intake", "matching", "notifications"):
        assert text(driver, f'#health tr[data-service="{name}"] .state') == "ready"

    page = {name: int(text(driver, f'#funnel tr[data-step="{name}"] .count')) for name in FUNNEL_STEPS}
    assert page == await api_funnel(world)
    assert (page["submitted"], page["accepted"], page["completed"]) == (3, 1, 1)
    assert text(driver, '#funnel tr[data-step="submitted"] .rate') == "—"
    offered_rate = 100 * page["offered"] / page["matched"]
    assert text(driver, '#funnel tr[data-step="offered"] .rate') == f"{offered_rate:.1f} %"
    assert text(driver, '#funnel tr[data-step="completed"] .rate') == "100.0 %"
    camera.shot("dashboard")

    lag = driver.find_elements(By.CSS_SELECTOR, "#consumer-lag tbody tr")  # a lag or "no data" for each service
    assert {row.get_attribute("data-service") for row in lag} == {"intake", "matching", "notifications"}

    def counted(d: WebDriver) -> bool:  # matching updates its statistics from the events
        legal, books = '#partners tr[data-partner-id="console-legal"]', '#partners tr[data-partner-id="console-books"]'
        return text(d, f"{legal} .completed") == "1" and text(d, f"{books} .offers") == "1"

    refresh_until(driver, counted, "the completion and the open offer in the partner load")
    # Load counts accepted, unfinished referrals: the completed one is done, the offered one not taken yet.
    assert text(driver, '#partners tr[data-partner-id="console-legal"] .load') == "0/10"
    assert text(driver, '#partners tr[data-partner-id="console-books"] .load') == "0/10"
    assert text(driver, '#partners tr[data-partner-id="console-books"] .state-available') == "available"
    driver.find_element(By.ID, "partners").location_once_scrolled_into_view  # noqa: B018 (a property that scrolls)
    camera.shot("partners")


def attribute(element: WebElement, name: str) -> str:
    return str(element.get_attribute(name))


def text_content(driver: WebDriver, css: str) -> str:
    """The text of an element whether painted or not (an SVG <desc>, a visually hidden table)."""
    return attribute(driver.find_element(By.CSS_SELECTOR, css), "textContent").strip()


def chart_bars(driver: WebDriver, chart: str) -> dict[str, WebElement]:
    return {attribute(bar, "data-label"): bar for bar in driver.find_elements(By.CSS_SELECTOR, f"#{chart} g.bar")}


def chart_series(driver: WebDriver, chart: str) -> dict[str, WebElement]:
    return {attribute(g, "data-series"): g for g in driver.find_elements(By.CSS_SELECTOR, f"#{chart} g.series")}


def chart_webhooks(driver: WebDriver) -> dict[str, dict[str, int]]:
    """partner id -> {state: count}, as the webhook chart draws it."""
    return {
        attribute(row, "data-key"): {
            attribute(part, "data-part"): int(attribute(part, "data-value"))
            for part in row.find_elements(By.CSS_SELECTOR, "rect.part")
        }
        for row in driver.find_elements(By.CSS_SELECTOR, "#webhook-chart g.bar")
    }


async def api_webhooks(world: World) -> dict[str, dict[str, int]]:
    """Each partner's webhook deliveries by state, as the deliveries API lists them."""
    counts = {}
    for partner in world.partner_keys:
        listed = await world.http.get(
            "/v1/deliveries", params={"partner_id": partner, "limit": 200}, headers=bearer(world.operator)
        )
        states = Counter(d["status"] for d in listed.json() if d["channel"] == "webhook")
        counts[partner] = {state: states[state] for state in ("delivered", "retrying", "failed")}
    return counts


async def test_the_charts_draw_the_funnel_the_last_hour_and_webhook_success_as_the_api_tells_them(
    world: World, driver: WebDriver, camera: Camera
) -> None:
    async def settled() -> bool:  # legal's endpoint takes every delivery, books' refuses every one (no retry)
        counts = await api_webhooks(world)
        legal, books = counts["console-legal"], counts["console-books"]
        return legal["delivered"] > 0 and books["failed"] > 0 and legal["retrying"] + books["retrying"] == 0

    await eventually(settled, "the seeded partners' webhook deliveries to settle")
    sign_in_as_operator(driver, world)

    bars = chart_bars(driver, "funnel-chart")
    drawn = {step: int(attribute(bar, "data-value")) for step, bar in bars.items()}
    assert drawn == await api_funnel(world)
    assert drawn == {name: int(text(driver, f'#funnel tr[data-step="{name}"] .count')) for name in FUNNEL_STEPS}
    lengths = {step: float(attribute(bar.find_element(By.CSS_SELECTOR, "rect"), "width")) for step, bar in bars.items()}
    for step, count in drawn.items():  # the bars' lengths are the numbers, not decoration
        assert lengths[step] == pytest.approx(lengths["submitted"] * count / drawn["submitted"], abs=0.05)
    funnel_text = text_content(driver, "#funnel-chart desc")
    assert all(f"{step}: {count}" in funnel_text for step, count in drawn.items())
    assert attribute(driver.find_element(By.ID, "funnel-chart"), "role") == "img"
    driver.find_element(By.ID, "funnel").location_once_scrolled_into_view  # noqa: B018
    camera.shot("funnel-chart")

    async def agreed() -> dict[str, dict[str, int]] | None:  # read around the page: no delivery slips in between
        before = await api_webhooks(world)
        driver.refresh()
        shown = chart_webhooks(driver)
        return shown if before == shown == await api_webhooks(world) else None

    shown = await eventually(agreed, "the webhook chart to agree with the deliveries API")
    books = chart_bars(driver, "webhook-chart")[BOOKS_NAME]
    assert attribute(books, "data-key") == "console-books"
    assert books.find_element(By.CSS_SELECTOR, "text.bar-label").text == BOOKS_NAME  # shown as text, not markup
    assert not driver.find_elements(By.CSS_SELECTOR, "#webhooks b")
    for partner, states in shown.items():
        row = f'#webhook-success tr[data-partner-id="{partner}"]'
        assert {state: int(text_content(driver, f"{row} .{state}")) for state in states} == states
    driver.find_element(By.ID, "webhooks").location_once_scrolled_into_view  # noqa: B018
    camera.shot("webhook-chart")

    def sampled(d: WebDriver) -> bool:  # the history samples every few seconds, from intake's start
        return set(chart_series(d, "lag-chart")) == set(world.services) and {"intake", "matching"} <= set(
            chart_series(d, "backlog-chart")
        )

    refresh_until(driver, sampled, "the lag and backlog history of every service")
    for chart, table in (("lag-chart", "lag-history"), ("backlog-chart", "backlog-history")):
        for service, line in chart_series(driver, chart).items():
            row = f'#{table} tr[data-service="{service}"]'
            assert text_content(driver, f"{row} .latest") == attribute(line, "data-value")
            assert int(text_content(driver, f"{row} .samples")) == int(attribute(line, "data-points")) >= 1
            assert line.find_elements(By.CSS_SELECTOR, "circle.dot")
    driver.find_element(By.ID, "lag").location_once_scrolled_into_view  # noqa: B018
    camera.shot("lag-and-backlog-charts")


async def test_an_open_offer_past_its_deadline_is_listed(
    world: World, seeded: Seeded, driver: WebDriver, camera: Camera
) -> None:
    """As if matching's expiry scheduler had stalled: the stored deadline of the open offer is moved back."""
    rid = seeded.referrals["offered"]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(world.namespace.infra.mongodb_uri, tz_aware=True)
    try:
        requests = client[world.namespace.database("intake")]["service_requests"]
        doc = await requests.find_one({"referrals.id": rid})
        assert doc is not None
        for referral in doc["referrals"]:
            if referral["id"] == rid:
                referral["offer_deadlines"] = {"console-books": datetime.now(UTC) - timedelta(hours=2, minutes=5)}
        await requests.update_one({"_id": doc["_id"]}, {"$set": {"referrals": doc["referrals"]}})
    finally:
        await client.close()

    sign_in_as_operator(driver, world)
    row = f'#past-deadline tr[data-referral-id="{rid}"]'
    assert "console-books" in text(driver, row)
    assert text(driver, f"{row} .state").startswith("2 h 5 min")
    driver.find_element(By.ID, "past-deadline").location_once_scrolled_into_view  # noqa: B018
    camera.shot("past-deadline")


async def test_replaying_a_dead_letter_takes_it_off_the_open_list(
    world: World, seeded: Seeded, driver: WebDriver, camera: Camera
) -> None:
    sign_in_as_operator(driver, world)
    row = f'#dead-letters tr[data-letter-id="{seeded.letter_id}"]'
    driver.find_element(By.CSS_SELECTOR, row).location_once_scrolled_into_view  # noqa: B018
    camera.shot("dead-letter-open")
    driver.find_element(By.CSS_SELECTOR, f"{row} button").click()

    flash = wait(driver).until(ec.visibility_of_element_located((By.ID, "flash")))
    assert f"Replay of {seeded.letter_id}: sent" in flash.text
    assert not driver.find_elements(By.CSS_SELECTOR, row)
    camera.shot("dead-letter-replayed")

    letter = await world.http.get(f"/v1/dead-letters/{seeded.letter_id}", headers=bearer(world.operator))
    assert letter.json()["status"] == "replayed"
    assert [r["by"] for r in letter.json()["replays"]] == [f"operator:{OPERATOR_NAME}"]

    async def failed_again() -> bool:  # the replay really re-sent it: still garbage, it is dead-lettered anew
        answer = await world.http.get("/v1/dead-letters", params={"status": "open"}, headers=bearer(world.operator))
        return any(d["event_id"] == GARBAGE_EVENT_ID and d["id"] != seeded.letter_id for d in answer.json())

    await eventually(failed_again, "the replayed garbage to be dead-lettered again under its new offset")


async def test_assigning_an_unmatched_referral_offers_it_to_the_partner(
    world: World, seeded: Seeded, driver: WebDriver, camera: Camera
) -> None:
    rid = seeded.referrals["unmatched"]
    sign_in_as_operator(driver, world)
    row = f'#unmatched tr[data-referral-id="{rid}"]'
    Select(driver.find_element(By.ID, f"assign-{rid}")).select_by_value("console-books")
    driver.find_element(By.CSS_SELECTOR, row).location_once_scrolled_into_view  # noqa: B018
    camera.shot("unmatched-choose-partner")
    driver.find_element(By.CSS_SELECTOR, f"{row} button").click()

    flash = wait(driver).until(ec.visibility_of_element_located((By.ID, "flash")))
    assert f"Referral {rid} assigned to console-books" in flash.text
    camera.shot("unmatched-assigned")

    offered = await world.until(rid, "offered")
    assert offered["open_offers"] == ["console-books"]
    refresh_until(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, row), "the referral to leave the queue")
    assert "The unmatched queue is empty." in text(driver, "#unmatched")
    camera.shot("unmatched-empty")


async def test_posts_need_the_csrf_token_sign_out_ends_the_session_and_revoked_keys_lose_theirs(
    world: World, driver: WebDriver, camera: Camera
) -> None:
    sign_in_as_operator(driver, world)
    cookie = driver.get_cookie("goglobal_console")
    assert cookie is not None
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"], cookie["secure"]) == (
        True,
        "Strict",
        "/console",
        False,  # plain http here; https requests get a Secure cookie
    )
    session = {"Cookie": f"goglobal_console={cookie['value']}"}
    for form in ({}, {"csrf_token": "forged"}):
        refused = await world.http.post("/console/logout", data=form, headers=session)
        assert refused.status_code == 403, refused.text
        assert refused.headers["cache-control"] == "no-store"
    assert (await world.http.get("/console", headers=session)).status_code == 200  # the session survived

    driver.find_element(By.ID, "logout").click()
    wait(driver).until(ec.url_to_be(f"{world.url}/console/login"))
    camera.shot("signed-out")
    assert driver.get_cookie("goglobal_console") is None
    driver.get(f"{world.url}/console")
    wait(driver).until(ec.url_to_be(f"{world.url}/console/login"))
    gone = await world.http.get("/console", headers=session)
    assert gone.status_code == 303  # deleted on the server, not only in the browser

    second = await factories.operator_key(world.namespace, "second-operator")
    login = await world.http.post("/console/login", data={"api_key": second})
    assert login.status_code == 303
    other = {"Cookie": f"goglobal_console={login.cookies['goglobal_console']}"}
    assert (await world.http.get("/console", headers=other)).status_code == 200
    second_id = key_id(second)
    revoked = await world.http.delete(f"/v1/api-keys/{second_id}", headers=bearer(world.operator))
    assert revoked.status_code == 200, revoked.text
    assert (await world.http.get("/console", headers=other)).status_code == 303

"""`make run` on ports of its own beside the stack on the default ones, as the README tells a user whose default ports
are taken: the five port variables and a state directory of its own, nothing else. Its preflight, infra.py up and
run.py (what `make run` runs after installing), then the README's walk twice with what the banner exports, SIGINT
(exit 0) and infra.py down on the same settings. The default stack answers throughout and afterwards, and the
walks' data is in the new stack's database, not the default one's."""

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from tests.integration.test_readme_walk import check_walk, readme_walk, run_walk
from tests.support import READY_DEADLINE_S, REPO, TIME_SCALE, Infra, eventually, ports

sys.path.append(str(REPO / "deploy" / "local"))
import infra as local_infra  # deploy/local/infra.py: its wire checks

STACK_DEADLINE_S = 300 * TIME_SCALE  # a second Kafka and nx-27017, started from the shared cache
STOP_DEADLINE_S = 90 * TIME_SCALE
INFRA = [sys.executable, str(REPO / "deploy" / "local" / "infra.py")]
RUN = [sys.executable, str(REPO / "deploy" / "local" / "run.py")]
# What a caller's environment may hold that would point the stack elsewhere: run.py must not need it unset, but
# the user following the README has none of it.
FOREIGN = ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI", "GOGLOBAL_MONGODB_DATABASE", "GOGLOBAL_TOPIC_PREFIX", "API")


def other_ports() -> ports.Ports:
    """Five free ports, Kafka's with the next one free too for its controller."""
    chosen: list[int] = []
    for _ in ports.VARIABLES:
        chosen.append(ports.free_port([*chosen, *(p + 1 for p in chosen)]))
    return ports.Ports(*chosen)


def default_stack_answers(infra: Infra) -> bool:
    kafka = urlsplit(f"//{infra.kafka.split(',')[0]}").port or 9092
    mongo = urlsplit(infra.mongodb_uri).port or 27017
    return local_infra.kafka_metadata_ok(kafka) and local_infra.mongo_ping_ok(mongo)


def stack_answers(stack: ports.Ports) -> bool:
    return local_infra.kafka_metadata_ok(stack.kafka) or local_infra.mongo_ping_ok(stack.mongo)


def infra_py(env: dict[str, str], *args: str, timeout_s: float = STOP_DEADLINE_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*INFRA, *args], env=env, capture_output=True, text=True, timeout=timeout_s)


def start_run(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """run.py as `make run` starts it, in a session of its own (a SIGINT reaches it alone, as Ctrl-C would)."""
    with log_path.open("wb") as log:
        return subprocess.Popen(RUN, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def banner_exports(log: str) -> dict[str, str]:
    """The variables the banner tells the user to export, as a shell would read its `export A=1 B=2` lines."""
    exports: dict[str, str] = {}
    for line in re.findall(r"^\s*export (.+)$", log, re.MULTILINE):
        for assignment in line.split("#")[0].split():
            name, _, value = assignment.partition("=")
            exports[name] = value
    return exports


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[tuple[ports.Ports, dict[str, str]]]:
    """The user's environment: the five ports and a state directory; the downloads shared with the default stack.
    infra.py down on the same settings afterwards, whatever happened."""
    stack = other_ports()
    state = os.environ.get("GOGLOBAL_STATE_DIR") or str(REPO / ".state")
    env = {name: value for name, value in os.environ.items() if name not in FOREIGN}
    env.update(
        stack.env(),
        GOGLOBAL_STATE_DIR=str(tmp_path / "state"),
        GOGLOBAL_CACHE_DIR=os.environ.get("GOGLOBAL_CACHE_DIR") or state,
        # Stale values, as a shell may hold: the port variables must win over them.
        GOGLOBAL_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9092",
        GOGLOBAL_MONGODB_URI="mongodb://127.0.0.1:27017/",
        GOGLOBAL_HTTP_PORT="8000",
    )
    yield stack, env
    infra_py(env, "down")


async def test_make_run_on_other_ports_beside_the_default_stack(
    infra: Infra, stack_env: tuple[ports.Ports, dict[str, str]], tmp_path: Path
) -> None:
    stack, env = stack_env
    assert await asyncio.to_thread(default_stack_answers, infra), "the default stack should be running"

    # The preflight refuses the default stack's Kafka port for a stack of another state directory, naming the
    # variable that moves it, and accepts the free ones.
    clash = {**env, "GOGLOBAL_KAFKA_PORT": str(urlsplit(f"//{infra.kafka.split(',')[0]}").port)}
    refused = await asyncio.to_thread(infra_py, clash, "preflight", "services")
    assert refused.returncode == 1 and "GOGLOBAL_KAFKA_PORT=" in refused.stderr, refused
    preflight = await asyncio.to_thread(infra_py, env, "preflight", "services")
    assert preflight.returncode == 0, preflight

    up = await asyncio.to_thread(infra_py, env, "up", timeout_s=STACK_DEADLINE_S)
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
    assert f"127.0.0.1:{stack.kafka}" in up.stdout and f"127.0.0.1:{stack.mongo}" in up.stdout, up.stdout
    # A second make run: its own infrastructure holds the ports now, which the preflight accepts (it is reused).
    again = await asyncio.to_thread(infra_py, env, "preflight", "services")
    assert again.returncode == 0, again

    log_path = tmp_path / "run.log"
    run = start_run(env, log_path)
    try:

        def logs() -> str:
            return log_path.read_text(errors="replace")[-6000:]

        async def banner() -> dict[str, str] | None:
            if run.poll() is not None:
                raise AssertionError(f"run.py exited with {run.returncode}:\n{logs()}")
            exports = banner_exports(log_path.read_text(errors="replace"))
            return exports if "PARTNER" in exports and "API" in exports else None

        exports = await eventually(banner, "run.py's banner", READY_DEADLINE_S, interval_s=0.5)
        assert exports["API"] == exports["GOGLOBAL_API_URL"] == stack.api_url, exports
        printed = log_path.read_text()
        assert f"{stack.api_url}/docs" in printed and "127.0.0.1:8000" not in printed, printed
        assert "GOGLOBAL_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 is ignored" in printed, printed
        async with httpx.AsyncClient(timeout=10) as http:
            for name in ports.SERVICES:
                assert (await http.get(f"{stack.url(name)}/readyz")).status_code == 200, name

        walk_env = {**env, **exports, "GOGLOBAL_API_KEY": ""}
        script = readme_walk()
        requests = []
        for _ in range(2):
            documents, stderr = await asyncio.to_thread(run_walk, script, walk_env, logs)
            requests.append(check_walk(documents, stderr))
        assert requests[0] != requests[1]

        # The walks went to this stack's database and broker.
        mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(stack.mongodb_uri, serverSelectionTimeoutMS=5000)
        try:
            assert await mongo["goglobal_intake"]["service_requests"].count_documents({}) == 2
        finally:
            await mongo.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap_servers)
        try:
            await admin.start()
            assert "goglobal.referrals" in await admin.list_topics()
        finally:
            await admin.close()

        run.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(run.wait, STOP_DEADLINE_S) == 0, logs()
        for name in ports.SERVICES:
            assert not ports.port_in_use(stack.http_port(name)), f"{name} still listens after run.py stopped"
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
            try:
                run.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait()

    down = await asyncio.to_thread(infra_py, env, "down")
    assert down.returncode == 0, f"{down.stdout}\n{down.stderr}"
    assert not await asyncio.to_thread(stack_answers, stack), "infra.py down left the other stack running"
    assert await asyncio.to_thread(default_stack_answers, infra), "the default stack must be left running"

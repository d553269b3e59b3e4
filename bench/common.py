"""What the service benchmarks share: an isolated namespace per run, the services as real processes, the partner
directory and the enterprise, the request body, percentiles, RSS and `/metrics` readings, the machine, and tables
that print to the terminal and render as markdown.

The services are started exactly as the end-to-end tests start them (`tests/support.py`: `python -m <service>`
with the environment of a fresh `Namespace`), so a run never sees another run's topics or documents; the
namespace's topics and databases are deleted when the run ends.
"""

import asyncio
import contextlib
import glob
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from tests import factories
from tests.support import (
    REPO,
    Infra,
    Namespace,
    ServiceProcess,
    eventually,
    free_port,
    native_infra,
    native_infra_handle,
    ports,
)

SERVICES = ("intake", "matching", "notifications")
# aiokafka logs brand-new topics' leader elections as errors; in the bench process they are only noise.
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
PARTNER_ID = "bench-harbour-legal"
OFFERED_TYPE = "hk.goglobal.partner.referral_offered.v1"
# One need per request, so one request is one referral, one `referral.submitted` event and one offer.
REQUEST_BODY: dict[str, Any] = {
    "needs": [
        {
            "service_category": "legal",
            "target_markets": ["AE", "SA"],
            "description": "Dubai subsidiary for a solar inverter distributor",
            "urgency": "high",
            "languages": ["en"],
        }
    ]
}


# ---------------------------------------------------------------------------------------------------- infrastructure


def infra() -> Infra:
    """`KAFKA_BOOTSTRAP_SERVERS` + `MONGODB_URI` when both are set (as for the tests), else the native stack."""
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URI")
    if kafka and mongo:
        return Infra(kafka, mongo)
    native_infra("up")  # reuses a running stack
    return native_infra_handle()


def _free_pair() -> int:
    """A port p with p and p + 1 free on loopback (Kafka's broker and controller listeners)."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and _port_free(port + 1):
            return port
    raise RuntimeError("no two adjacent free ports found")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextlib.contextmanager
def own_stack() -> Iterator[Infra]:
    """A private Kafka + nx-27017 (deploy/local/infra.py with its own state directory and ports, reusing the
    downloaded jars and the server's venv), so that other work restarting the shared stack cannot disturb a run.
    Sets KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI for the benchmarks while it lives; stopped and deleted after."""
    state = Path(tempfile.mkdtemp(prefix="bench-stack-", dir=REPO / ".state"))
    kafka_port = _free_pair()
    stack = ports.Ports(kafka=kafka_port, mongo=ports.free_port([kafka_port, kafka_port + 1]))
    kafka_port, mongo_port = stack.kafka, stack.mongo
    env = {
        **os.environ,
        "GOGLOBAL_STATE_DIR": str(state),
        "GOGLOBAL_CACHE_DIR": str(cache_dir()),
        "GOGLOBAL_KAFKA_PORT": str(kafka_port),
        "GOGLOBAL_MONGO_PORT": str(mongo_port),
    }
    script = [sys.executable, str(REPO / "deploy/local/infra.py")]
    saved = {name: os.environ.get(name) for name in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI")}
    try:
        log(f"starting a private Kafka on :{kafka_port} and nx-27017 on :{mongo_port}")
        up = subprocess.run([*script, "up"], env=env, capture_output=True, text=True)
        if up.returncode != 0:
            raise RuntimeError(f"infra.py up failed:\n{up.stdout}{up.stderr}")
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = stack.kafka_bootstrap_servers
        os.environ["MONGODB_URI"] = stack.mongodb_uri
        yield Infra(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["MONGODB_URI"])
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        subprocess.run([*script, "down"], env=env, capture_output=True, text=True)
        shutil.rmtree(state, ignore_errors=True)


def new_namespace(infrastructure: Infra, bench: str) -> Namespace:
    tag = f"{bench}-{uuid.uuid4().hex[:8]}"
    return Namespace(infrastructure, topic_prefix=f"bench-{tag}.", database_prefix=f"bench_{tag.replace('-', '_')}")


async def drop_namespace(namespace: Namespace) -> None:
    """Deletes the run's databases and topics (only names under its own unique prefix)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    try:
        for name in await client.list_database_names():
            if name.startswith(namespace.database_prefix + "_"):
                await client.drop_database(name)
    finally:
        await client.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=namespace.infra.kafka, client_id="goglobal-bench")
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(namespace.topic_prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


@dataclass
class System:
    """A namespace, its service processes and their log directory."""

    namespace: Namespace
    log_dir: Path
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    keep_logs: bool = False  # keep the services' logs even if the run ends well (something looked wrong)

    def start(self, name: str, extra_env: dict[str, str] | None = None) -> ServiceProcess:
        service = ServiceProcess(name, self.namespace, self.log_dir, extra_env)
        self.services[name] = service.start()
        return service

    async def start_ready(self, *names: str) -> None:
        started = [self.start(name) for name in names]
        for service in started:
            await service.wait_ready(deadline_s=90)

    def stop(self, name: str) -> None:
        service = self.services.get(name)
        if service is not None and service.proc is not None and service.proc.poll() is None:
            try:
                service.terminate(timeout_s=30)
            except Exception:
                service.kill()

    def stop_all(self, grace_s: float = 10.0) -> None:
        """SIGTERM to every service at once; whatever has not exited after `grace_s` is killed (a service with a
        backlog would otherwise finish its shutdown timeout, and the namespace is deleted next anyway)."""
        running = [s.proc for s in self.services.values() if s.proc is not None and s.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.asynccontextmanager
async def system(bench: str) -> AsyncIterator[System]:
    """A fresh namespace; on the way out every process started in it is stopped and its data deleted.
    The services' logs stay in a temporary directory only if something failed."""
    namespace = new_namespace(infra(), bench)
    log_dir = Path(tempfile.mkdtemp(prefix=f"goglobal-{bench}-"))
    running = System(namespace, log_dir)
    failed = True
    try:
        yield running
        failed = False
    finally:
        running.stop_all()
        with contextlib.suppress(Exception):
            await drop_namespace(namespace)
        if failed or running.keep_logs:
            print(f"service logs kept in {log_dir}", flush=True)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ directory & keys


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass(frozen=True)
class Parties:
    operator_key: str
    partner_keys: dict[str, str]  # partner id -> its API key
    webhook_secrets: dict[str, str]  # partner id -> its webhook signing secret
    enterprise_key: str

    @property
    def partner_key(self) -> str:
        """The first partner's key (the only one, unless `setup_parties` was asked for more)."""
        return next(iter(self.partner_keys.values()))


async def setup_parties(namespace: Namespace, intake_url: str, webhook_url: str | None, partners: int = 1) -> Parties:
    """An operator key, `partners` alike partners (legal in AE and SA, capacity 1000 each, a webhook to
    `webhook_url` if given) with their keys and signing secrets, and one registered enterprise with its key.

    A partner that accepts every offer holds each one open: after 1,000 it is full, and matching offers it nothing
    more. A load of more referrals than that needs more partners (matching spreads offers among equals)."""
    operator = await factories.operator_key(namespace, "bench-operator")
    keys: dict[str, str] = {}
    secrets: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as http:
        for number in range(partners):
            partner_id = PARTNER_ID if number == 0 else f"{PARTNER_ID}-{number + 1}"
            keys[partner_id], secrets[partner_id] = await _add_partner(http, operator, partner_id, webhook_url)
        registered = await http.post("/v1/enterprises", json=factories.enterprise(seed=7))
        registered.raise_for_status()
        return Parties(operator, keys, secrets, str(registered.json()["api_key"]["api_key"]))


async def _add_partner(
    http: httpx.AsyncClient, operator: str, partner_id: str, webhook_url: str | None
) -> tuple[str, str]:
    """Registers the partner; its API key and webhook secret."""
    body = factories.partner(partner_id, ["legal"], ["AE", "SA"], capacity=1000)
    if webhook_url is not None:
        body["delivery"] = {"webhook_url": webhook_url}
    created = await http.post("/v1/partners", json=body, headers=bearer(operator))
    created.raise_for_status()
    key = await http.post(f"/v1/partners/{partner_id}/api-keys", json={"name": "bench"}, headers=bearer(operator))
    key.raise_for_status()
    partner_key = str(key.json()["api_key"])
    secret = await http.get("/v1/partners/me/webhook-secret", headers=bearer(partner_key))
    secret.raise_for_status()
    return partner_key, str(secret.json()["secret"])


async def wait_until_offered(intake_url: str, parties: Parties, deadline_s: float = 90) -> str:
    """Submits requests until one gets offered (the directory reached matching through `partner.upserted`);
    returns that referral's id."""
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as http:

        async def offered() -> str | None:
            created = await http.post("/v1/service-requests", json=REQUEST_BODY, headers=bearer(parties.enterprise_key))
            created.raise_for_status()
            referral = created.json()["referrals"][0]["id"]

            async def settled() -> str | None:
                answer = await http.get(f"/v1/referrals/{referral}", headers=bearer(parties.operator_key))
                status = str(answer.json().get("status"))
                return status if status in {"offered", "unmatched"} else None

            status = await eventually(settled, f"referral {referral} to settle", deadline_s=60)
            return referral if status == "offered" else None

        return await eventually(offered, "matching to know the bench partner", deadline_s=deadline_s, interval_s=0.5)


# ---------------------------------------------------------------------------------------------------- measurements


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of `values`; infinity when it falls among infinite values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "-"
    if seconds == float("inf"):
        return "not delivered"
    return f"{seconds * 1e3:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:.1f} ms"


def rss_mib(pid: int) -> float:
    """VmRSS of a process, in MiB (NaN if it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample of `name` in a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            with contextlib.suppress(ValueError, IndexError):
                total += float(line.rsplit(" ", 1)[1])
    return total


def handling_means(text: str) -> dict[str, tuple[float, float]]:
    """Event type -> (events handled, mean seconds) from `goglobal_event_handling_seconds`."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        for suffix, into in (("_sum", sums), ("_count", counts)):
            prefix = f"goglobal_event_handling_seconds{suffix}{{"
            if line.startswith(prefix) and 'type="' in line:
                kind = line.split('type="', 1)[1].split('"', 1)[0]
                with contextlib.suppress(ValueError):
                    into[kind] = into.get(kind, 0.0) + float(line.rsplit(" ", 1)[1])
    return {kind: (counts[kind], sums.get(kind, 0.0) / counts[kind]) for kind in counts if counts[kind]}


async def scrape(http: httpx.AsyncClient, url: str) -> str:
    try:
        return (await http.get(f"{url}/metrics", timeout=5)).text
    except httpx.HTTPError:
        return ""


async def until(condition: Callable[[], bool], deadline: float, interval_s: float = 0.2) -> bool:
    """Waits until `condition()` holds or the monotonic `deadline` passes; returns whether it held."""
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval_s)


async def sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


# ------------------------------------------------------------------------------------------------------- machine


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def ram_gib() -> float:
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def cache_dir() -> Path:
    """Where deploy/local/infra.py keeps the Kafka jars and the database server's venv."""
    return Path(os.environ.get("GOGLOBAL_CACHE_DIR") or os.environ.get("GOGLOBAL_STATE_DIR") or REPO / ".state")


def nx_version() -> str:
    """The pinned nx-27017 of deploy/local/nx-27017/requirements.txt (the server answers MongoDB's version)."""
    pins = (REPO / "deploy/local/nx-27017/requirements.txt").read_text().splitlines()
    return next((line.replace("==", " ") for line in pins if line.startswith("nx-27017==")), "nx-27017")


def kafka_version() -> str:
    for jar in sorted(glob.glob(str(cache_dir() / "kafka-libs" / "kafka_2.*-*.jar"))):
        return Path(jar).stem.rsplit("-", 1)[1]
    return "unknown (not the native stack)"


async def database_version(mongodb_uri: str) -> str:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, serverSelectionTimeoutMS=5000)
    try:
        info = await client.admin.command("buildInfo")
        if "ferretdbVersion" in info:
            return f"FerretDB {info['ferretdbVersion']} (MongoDB wire protocol {info.get('version', '?')})"
        if "nx" in str(info.get("process", "")):
            return f"{nx_version()} (MongoDB wire protocol {info.get('version', '?')}, SQLite)"
        return f"MongoDB {info.get('version', '?')}"
    except Exception as exc:
        return f"unknown ({exc.__class__.__name__})"
    finally:
        await client.close()


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


async def machine_lines() -> list[str]:
    mongodb_uri = os.environ.get("MONGODB_URI") or ports.from_env().mongodb_uri
    return [
        f"CPU: {os.cpu_count()} x {cpu_model()}",
        f"RAM: {ram_gib():.1f} GiB",
        f"OS: {platform.system()} {platform.release()}",
        f"Python: {platform.python_version()} ({platform.python_implementation()})",
        f"Kafka: {kafka_version()} (KRaft, one node, local)",
        f"Database: {await database_version(mongodb_uri)}, local",
    ]


def utc_now() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


# ---------------------------------------------------------------------------------------------------------- tables


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # printed under the table, one paragraph each

    def markdown(self) -> str:
        lines = [
            f"**{self.title}**",
            "",
            "| " + " | ".join(self.headers) + " |",
            "| " + " | ".join(["---"] + ["---:"] * (len(self.headers) - 1)) + " |",
            *("| " + " | ".join(row) + " |" for row in self.rows),
        ]
        for note in self.notes:
            lines += ["", note]
        return "\n".join(lines) + "\n"


def show(*tables: Table) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a pipe or a file: do not squeeze the table into 80 columns
    for table in tables:
        rich_table = RichTable(title=table.title)
        for index, header in enumerate(table.headers):
            rich_table.add_column(header, justify="left" if index == 0 else "right")
        for row in table.rows:
            rich_table.add_row(*row)
        console.print(rich_table)
        for note in table.notes:
            console.print(note, highlight=False)
        console.print()


@dataclass
class Result:
    """What one benchmark hands to `bench.run_all`: its tables and a few headline lines."""

    name: str
    tables: list[Table]
    headlines: list[str] = field(default_factory=list)
    seconds: float = 0.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

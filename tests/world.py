"""The running system the integration, e2e, hostile and chaos tiers test: intake, matching and notifications started
as `python -m <service>` (as in production) on the real broker and database, in a namespace of their own, with an
operator key, an enterprise and an HTTP client on intake, and the steps most scenarios take through the public API:
add a partner (with a webhook receiver, or not), submit a request, wait until a referral reaches a status.

A module builds one with `running_world(...)` (usually in a module-scoped `world` fixture) and keeps what only it
needs (an SMTP sink, metrics, a browser) next to its tests, built on this one."""

import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests import factories
from tests.support import DEFAULT_DEADLINE_S, Infra, Namespace, ServiceProcess, discard, eventually
from tests.webhook_receiver import Receiver

SERVICES = ("intake", "matching", "notifications")
ENTERPRISE_EMAIL = "li.wei@brightsolar.example.cn"
SLOW_DEADLINE_S = 2 * DEFAULT_DEADLINE_S  # waits across several hops: Kafka, every matching replica


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def key_id(api_key: str) -> str:
    """The id part of an API key `gg_<key id>_<secret>`."""
    match = re.fullmatch(r"gg_([a-z0-9]{16})_.+", api_key)
    assert match, f"API keys look like gg_<key id>_<secret>, not {api_key[:20]}..."
    return match[1]


def new_namespace(infra: Infra, prefix: str = "test") -> Namespace:
    """Like the `namespace` fixture, for a system shared by every test of a module."""
    tag = uuid.uuid4().hex[:10]
    return Namespace(infra, topic_prefix=f"{prefix}-{tag}.", database_prefix=f"{prefix}_{tag}")


@dataclass(frozen=True)
class Enterprise:
    id: str
    key: str
    key_id: str
    profile: dict[str, Any]

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.key)


async def register_enterprise(
    http: httpx.AsyncClient, consent: bool = True, contact_email: str = ENTERPRISE_EMAIL
) -> Enterprise:
    profile = factories.enterprise(consent=consent)
    profile["contact"] = {**profile["contact"], "email": contact_email}
    answer = await http.post("/v1/enterprises", json=profile)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return Enterprise(body["enterprise"]["id"], body["api_key"]["api_key"], body["api_key"]["key_id"], profile)


async def start_services(
    names: Iterable[str], namespace: Namespace, log_dir: Path, extra_env: Mapping[str, dict[str, str]] | None = None
) -> dict[str, ServiceProcess]:
    """Starts the services at once and waits until each is ready; stops them all if one is not."""
    services = {name: ServiceProcess(name, namespace, log_dir, (extra_env or {}).get(name)) for name in names}
    await _ready(services.values())
    return services


async def _ready(processes: Iterable[ServiceProcess]) -> None:
    started = [process.start() for process in processes]
    try:
        for process in started:
            await process.wait_ready()
    except BaseException:
        stop_services(started)
        raise


def stop_services(processes: Iterable[ServiceProcess]) -> None:
    """SIGTERM (as an orchestrator stops them, and so coverage saves its data), SIGKILL after 10 s."""
    for process in processes:
        if process.proc is not None and process.proc.poll() is None:
            try:
                process.terminate(timeout_s=10)
            except Exception:
                process.kill()


@dataclass
class World:
    namespace: Namespace
    log_dir: Path
    processes: dict[str, list[ServiceProcess]]  # by service: its replicas, the first one at index 0
    env: Mapping[str, dict[str, str]]  # the extra environment each service was started with
    http: httpx.AsyncClient  # on intake
    operator: str  # an operator's API key
    enterprise: Enterprise  # registered with consent to share its contact
    partner_keys: dict[str, str] = field(default_factory=dict)  # by partner id, for the partners added here

    @property
    def url(self) -> str:
        """Intake's base URL."""
        return self.processes["intake"][0].url

    @property
    def services(self) -> dict[str, ServiceProcess]:
        """The first process of each service."""
        return {name: replicas[0] for name, replicas in self.processes.items()}

    # -- the processes ---------------------------------------------------------------------------------------------

    def alive(self) -> dict[str, int | None]:
        """Each process's exit code, None while it runs (replicas after the first as `<name>#<n>`)."""
        return {
            f"{name}#{n}" if n else name: (process.proc.poll() if process.proc is not None else -1)
            for name, replicas in self.processes.items()
            for n, process in enumerate(replicas)
        }

    def assert_running(self, *names: str) -> None:
        """Fails at once (with the logs) when a process of one of `names` (default: every service) has exited."""
        dead = {
            n: code for n, code in self.alive().items() if code is not None and (not names or n.split("#")[0] in names)
        }
        assert not dead, f"services exited: {dead}\n{self.logs()}"

    def logs(self, lines: int = 15) -> str:
        return "\n".join(f"--- {name}\n{s.log_tail(lines)}" for name, s in self.services.items())

    async def ready(self) -> dict[str, int]:
        """Each service's /readyz status (0: no answer)."""
        answers = {}
        for name, service in self.services.items():
            try:
                answers[name] = (await self.http.get(f"{service.url}/readyz", timeout=5)).status_code
            except httpx.HTTPError:
                answers[name] = 0
        return answers

    async def add_replica(self, name: str) -> ServiceProcess:
        process = ServiceProcess(name, self.namespace, self.log_dir, self.env.get(name))
        await _ready([process])
        self.processes.setdefault(name, []).append(process)
        return process

    async def replace(self, name: str, index: int = 0) -> ServiceProcess:
        """Starts a new process in place of a stopped (or killed) one, as its orchestrator would; waits until it is
        ready. A new intake listens on another port: the world's client follows it."""
        process = ServiceProcess(name, self.namespace, self.log_dir, self.env.get(name))
        self.processes[name][index] = process
        await _ready([process])
        if name == "intake" and index == 0:
            self.http.base_url = httpx.URL(process.url)
        return process

    async def restart(self, name: str, index: int = 0) -> ServiceProcess:
        """SIGKILL one process of `name` (nothing saved, nothing flushed) and start a new one in its place."""
        self.processes[name][index].kill()
        return await self.replace(name, index)

    # -- through the public API ------------------------------------------------------------------------------------

    async def add_partner(
        self,
        partner_id: str,
        categories: list[str],
        markets: list[str],
        webhook: Receiver | None = None,
        *,
        wait: bool = True,
        **fields: Any,
    ) -> str:
        """Registers (or replaces) a partner, issues it an API key (returned, and kept in `partner_keys`), gives a
        webhook receiver its signing secret, and (unless not `wait`) waits until every matching replica knows the
        partner: a referral submitted before would go unmatched. `fields` override the factory's record."""
        body = factories.partner(partner_id, categories, markets, **fields)
        del body["id"]
        if webhook is not None:
            body["delivery"] = {"webhook_url": webhook.url}
        answer = await self.http.put(f"/v1/partners/{partner_id}", json=body, headers=bearer(self.operator))
        assert answer.status_code in (200, 201), answer.text
        key = self.partner_keys[partner_id] = await self.partner_key(partner_id)
        if webhook is not None:
            secret = await self.http.get("/v1/partners/me/webhook-secret", headers=bearer(key))
            assert secret.status_code == 200, secret.text
            webhook.secrets.append(secret.json()["secret"])
        if wait:
            await self.matching_knows(partner_id)
        return key

    async def partner_key(self, partner_id: str, name: str = "test") -> str:
        answer = await self.http.post(
            f"/v1/partners/{partner_id}/api-keys", json={"name": name}, headers=bearer(self.operator)
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["api_key"])

    async def matching_knows(self, partner_id: str) -> None:
        """The directory reaches matching through `partner.upserted`: waits until each replica has the partner."""
        for n, replica in enumerate(self.processes.get("matching", [])):

            async def known(url: str = replica.url) -> bool:
                return (await self.http.get(f"{url}/internal/directory/{partner_id}")).status_code == 200

            await eventually(known, f"{partner_id} in the directory of matching #{n}", SLOW_DEADLINE_S)

    async def register_enterprise(self, consent: bool = True, contact_email: str = ENTERPRISE_EMAIL) -> Enterprise:
        return await register_enterprise(self.http, consent, contact_email)

    async def submit(self, needs: list[dict[str, Any]], enterprise: Enterprise | None = None) -> dict[str, Any]:
        """Submits a service request (by the world's enterprise unless another is given); returns intake's answer."""
        who = enterprise or self.enterprise
        answer = await self.http.post("/v1/service-requests", json={"needs": needs}, headers=who.auth)
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def refer(self, category: str, markets: list[str], **need: Any) -> str:
        """Submits a one-need request; returns its referral's id."""
        body = await self.submit([{"service_category": category, "target_markets": markets, **need}])
        return str(body["referrals"][0]["id"])

    async def referral(self, referral_id: str) -> dict[str, Any]:
        """The referral as the operator sees it."""
        answer = await self.http.get(f"/v1/referrals/{referral_id}", headers=bearer(self.operator))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def until(self, referral_id: str, status: str, offers: list[str] | None = None) -> dict[str, Any]:
        """Waits until the referral has `status` (and, if given, exactly the open `offers`); returns it."""

        async def reached() -> dict[str, Any] | None:
            body = await self.referral(referral_id)
            ok = body["status"] == status and (offers is None or sorted(body["open_offers"]) == sorted(offers))
            return body if ok else None

        with_offers = "" if offers is None else f" with open offers to {offers}"
        return await eventually(reached, f"referral {referral_id} to be {status}{with_offers}")

    async def statuses(self, request_id: str) -> list[str]:
        answer = await self.http.get(f"/v1/service-requests/{request_id}", headers=bearer(self.operator))
        assert answer.status_code == 200, answer.text
        return [str(r["status"]) for r in answer.json()["referrals"]]

    async def all_offered(self, request_ids: list[str]) -> None:
        async def offered() -> bool:
            for request_id in request_ids:
                if any(s != "offered" for s in await self.statuses(request_id)):
                    return False
            return True

        await eventually(offered, f"every referral of {len(request_ids)} requests to be offered", SLOW_DEADLINE_S)

    async def act(self, partner_id: str, referral_id: str, action: str, body: Any = None) -> httpx.Response:
        """A partner added here acts on a referral (accept, decline, start, complete, ...)."""
        return await self.http.post(
            f"/v1/referrals/{referral_id}/{action}", json=body, headers=bearer(self.partner_keys[partner_id])
        )


@contextlib.asynccontextmanager
async def running_world(
    namespace: Namespace,
    log_dir: Path,
    env: Mapping[str, dict[str, str]] | None = None,
    names: Iterable[str] = SERVICES,
    *,
    replicas: Mapping[str, int] | None = None,
    operator_name: str = "test-operator",
    console: bool = False,
) -> AsyncIterator[World]:
    """Starts `names` (intake first; `replicas` processes of a service, default one each) with `env` added to each
    service's environment, and stops them (SIGTERM) and discards the namespace's topics and databases at the end.
    `console`: intake's console reads the other services' /readyz and /metrics (GOGLOBAL_SERVICE_URLS)."""
    env = {name: dict(extra) for name, extra in (env or {}).items()}
    names = list(names)
    processes = {
        name: [ServiceProcess(name, namespace, log_dir, env.get(name)) for _ in range((replicas or {}).get(name, 1))]
        for name in names
    }
    if console:
        urls = json.dumps({name: replicas_[0].url for name, replicas_ in processes.items()})
        env.setdefault("intake", {})["GOGLOBAL_SERVICE_URLS"] = urls
        for process in processes["intake"]:
            process.env["GOGLOBAL_SERVICE_URLS"] = urls
    world: World | None = None
    try:
        await _ready(p for replicas_ in processes.values() for p in replicas_)
        operator = await factories.operator_key(namespace, operator_name)
        async with httpx.AsyncClient(base_url=processes["intake"][0].url, timeout=15) as http:
            customer = await register_enterprise(http)
            world = World(namespace, log_dir, processes, env, http, operator, customer)
            yield world
    finally:
        stop_services(p for replicas_ in (world.processes if world else processes).values() for p in replicas_)
        await discard(namespace)

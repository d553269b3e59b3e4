"""What the console shows. Pure functions (funnel, past-deadline offers, webhook success, metric parsing) are
unit-tested; the `collect` functions read intake's database and the services' HTTP endpoints and feed them."""

import asyncio
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from prometheus_client.parser import text_string_to_metric_families

from goglobal_contract.enums import ReferralStatus
from goglobal_shared.mongo import Document
from intake.components import Intake
from intake.service_layer.ports import LetterFilter, RequestFilter

HTTP_TIMEOUT_S = 2.0
DEAD_LETTER_ROWS = 50
UNMATCHED_REQUESTS = 100  # requests scanned for the unmatched queue (a request may hold several referrals)
PARTNER_CHOICES = 500

# -- the referral funnel ------------------------------------------------------------------------------

FUNNEL_STEPS = ("submitted", "matched", "offered", "accepted", "completed")
# How far along the funnel a status proves a referral got. Statuses that can follow any step (unmatched,
# withdrawn, closed) prove nothing beyond `submitted`; the history tells the rest.
_STATUS_REACHED = {
    "submitted": 0,
    "matching": 0,
    "unmatched": 0,
    "withdrawn": 0,
    "closed": 0,
    "matched": 1,
    "offered": 2,
    "declined": 2,
    "expired": 2,
    "accepted": 3,
    "in_progress": 3,
    "completed": 4,
}


@dataclass(frozen=True)
class FunnelStep:
    name: str
    count: int
    rate_percent: float | None  # of the previous step; None for the first step or when the previous is 0


def funnel(referrals: Iterable[Mapping[str, Any]]) -> list[FunnelStep]:
    """Counts each referral (`{"status": ..., "history": [{"action": ...}]}`) in every step it reached."""
    counts = [0] * len(FUNNEL_STEPS)
    for referral in referrals:
        actions = {step.get("action") for step in referral.get("history") or []}
        reached = _STATUS_REACHED.get(str(referral.get("status")), -1)
        for index, step in enumerate(FUNNEL_STEPS):
            if step in actions or reached >= index:
                counts[index] += 1
    steps = []
    for index, (name, count) in enumerate(zip(FUNNEL_STEPS, counts, strict=True)):
        previous = counts[index - 1] if index else 0
        rate = round(100.0 * count / previous, 1) if previous else None
        steps.append(FunnelStep(name, count, rate))
    return steps


def referrals_of(requests: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for request in requests:
        yield from request.get("referrals") or []


# -- offers past their deadline -----------------------------------------------------------------------


@dataclass(frozen=True)
class OverdueOffer:
    referral_id: str
    request_id: str
    enterprise_name: str
    category: str
    partner_id: str
    deadline: datetime
    overdue: timedelta


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # BSON dates are UTC


def past_deadline(requests: Iterable[Mapping[str, Any]], now: datetime) -> list[OverdueOffer]:
    """Open offers whose respond-by time has passed (the expiry scheduler should have acted): oldest first."""
    found = []
    for request in requests:
        for referral in request.get("referrals") or []:
            if referral.get("status") != "offered":
                continue
            deadlines: Mapping[str, Any] = referral.get("offer_deadlines") or {}
            for partner_id in referral.get("open_offers") or []:
                deadline = deadlines.get(partner_id)
                if isinstance(deadline, datetime) and _utc(deadline) < now:
                    found.append(
                        OverdueOffer(
                            referral_id=str(referral.get("id")),
                            request_id=str(request.get("_id")),
                            enterprise_name=str(request.get("enterprise_name", "")),
                            category=str((referral.get("need") or {}).get("service_category", "")),
                            partner_id=partner_id,
                            deadline=_utc(deadline),
                            overdue=now - _utc(deadline),
                        )
                    )
    return sorted(found, key=lambda offer: offer.deadline)


# -- webhook delivery success ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookSuccess:
    """A partner's webhook deliveries by their latest state (intake's projection of notifications' outcomes)."""

    partner_id: str
    name: str
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.retrying + self.failed

    @property
    def success_percent(self) -> float | None:
        """Of the finished deliveries: one still retrying has not succeeded or failed yet."""
        finished = self.delivered + self.failed
        return round(100.0 * self.delivered / finished, 1) if finished else None


_DELIVERY_STATES = frozenset(("delivered", "retrying", "failed"))


def webhook_success(deliveries: Iterable[Mapping[str, Any]], names: Mapping[str, str]) -> list[WebhookSuccess]:
    """Counts each partner's deliveries (`{"recipient_id", "status"}`) by state; the partners with the most
    failures come first, since they are the ones an operator looks for."""
    counts: dict[str, Counter[str]] = {}
    for delivery in deliveries:
        status = delivery.get("status")
        if status in _DELIVERY_STATES:
            counts.setdefault(str(delivery.get("recipient_id")), Counter())[str(status)] += 1
    rows = [
        WebhookSuccess(pid, names.get(pid, pid), states["delivered"], states["retrying"], states["failed"])
        for pid, states in counts.items()
    ]
    return sorted(rows, key=lambda row: (-row.failed, -row.total, row.partner_id))


# -- metrics ------------------------------------------------------------------------------------------

CONSUMER_LAG = "goglobal_consumer_lag"
OUTBOX_BACKLOG = "goglobal_outbox_backlog"
OUTBOX_OLDEST = "goglobal_outbox_oldest_pending_seconds"
WATCHED_METRICS = (CONSUMER_LAG, OUTBOX_BACKLOG, OUTBOX_OLDEST)


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


def parse_metrics(text: str, wanted: Collection[str] = WATCHED_METRICS) -> dict[str, list[Sample]]:
    """The samples of the `wanted` metrics in a Prometheus text exposition; an absent metric has no key.
    Raises ValueError on text that is not an exposition."""
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                found.setdefault(sample.name, []).append(Sample(dict(sample.labels), float(sample.value)))
    return found


# -- what the dashboard gathers -----------------------------------------------------------------------

ReadyState = Literal["ready", "not_ready", "unreachable"]


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    url: str
    state: ReadyState
    failing: list[str] = field(default_factory=list)  # "check: error" for each failing check


@dataclass(frozen=True)
class ServiceMetrics:
    name: str
    samples: dict[str, list[Sample]] | None  # None: /metrics could not be read (see `problem`)
    problem: str | None = None


@dataclass(frozen=True)
class PartnerLoadRow:
    partner_id: str
    name: str
    active: bool
    capacity: int
    open_referrals: int
    offers: int
    accepted: int
    declined: int
    expired: int
    completed: int
    mean_response_hours: float | None
    mean_rating: float | None

    @property
    def state(self) -> Literal["inactive", "full", "available"]:
        if not self.active:
            return "inactive"
        return "full" if self.open_referrals >= self.capacity else "available"


_LOAD_FIELDS = frozenset(PartnerLoadRow.__dataclass_fields__)


@dataclass(frozen=True)
class PartnerLoads:
    rows: list[PartnerLoadRow]
    problem: str | None = None


@dataclass(frozen=True)
class UnmatchedReferral:
    referral_id: str
    request_id: str
    enterprise_name: str
    category: str
    markets: list[str]
    since: datetime | None
    pending_assignment: str | None  # "assigned to X" while matching has not offered it yet


@dataclass(frozen=True)
class PartnerChoice:
    partner_id: str
    name: str


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    health: list[ServiceHealth]
    metrics: list[ServiceMetrics]
    funnel: list[FunnelStep]
    past_deadline: list[OverdueOffer]
    unmatched: list[UnmatchedReferral]
    partner_choices: list[PartnerChoice]
    dead_letters: list[Document]
    partner_loads: PartnerLoads
    webhooks: list[WebhookSuccess]


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200].rstrip(": ")


async def read_health(http: httpx.AsyncClient, name: str, url: str) -> ServiceHealth:
    try:
        answer = await http.get(f"{url}/readyz")
    except httpx.HTTPError as exc:
        return ServiceHealth(name, url, "unreachable", [_error(exc)])
    if answer.status_code == 200:
        return ServiceHealth(name, url, "ready")
    try:
        checks: Mapping[str, Any] = answer.json().get("checks") or {}
        failing = [f"{check}: {result}" for check, result in checks.items() if result != "ok"]
    except (ValueError, AttributeError):
        failing = []
    return ServiceHealth(name, url, "not_ready", failing or [f"HTTP {answer.status_code}"])


async def read_metrics(http: httpx.AsyncClient, name: str, url: str) -> ServiceMetrics:
    try:
        answer = await http.get(f"{url}/metrics")
        answer.raise_for_status()
        return ServiceMetrics(name, parse_metrics(answer.text))
    except (httpx.HTTPError, ValueError) as exc:
        return ServiceMetrics(name, None, _error(exc))


async def read_partner_loads(http: httpx.AsyncClient, urls: Mapping[str, str]) -> PartnerLoads:
    if "matching" not in urls:
        return PartnerLoads([], "no URL for matching in GOGLOBAL_SERVICE_URLS")
    try:
        answer = await http.get(f"{urls['matching']}/internal/partner-load")
        answer.raise_for_status()
        # Fields matching may add later are ignored; a missing one is reported (TypeError).
        rows = [PartnerLoadRow(**{k: v for k, v in row.items() if k in _LOAD_FIELDS}) for row in answer.json()]
    except (httpx.HTTPError, ValueError, TypeError, AttributeError) as exc:
        return PartnerLoads([], _error(exc))
    return PartnerLoads(sorted(rows, key=lambda r: r.partner_id))


async def read_funnel(intake: Intake) -> list[FunnelStep]:
    return funnel(referrals_of(await intake.requests.referral_documents()))


async def read_past_deadline(intake: Intake, now: datetime) -> list[OverdueOffer]:
    return past_deadline(await intake.requests.referral_documents(ReferralStatus.OFFERED), now)


async def read_unmatched(intake: Intake) -> list[UnmatchedReferral]:
    rows = []
    unmatched = RequestFilter(status=ReferralStatus.UNMATCHED)
    for request in await intake.requests.page(unmatched, UNMATCHED_REQUESTS, None):
        for referral in request.referrals:
            if referral.status.value != "unmatched":
                continue
            last = referral.history[-1] if referral.history else {}
            rows.append(
                UnmatchedReferral(
                    referral_id=referral.id,
                    request_id=request.id,
                    enterprise_name=request.enterprise_name,
                    category=referral.need.service_category.value,
                    markets=[str(m) for m in referral.need.target_markets],
                    since=last.get("at"),
                    pending_assignment=last.get("why") if last.get("action") == "assigned" else None,
                )
            )
    return rows


async def read_partner_choices(intake: Intake) -> list[PartnerChoice]:
    docs = await intake.partners.page(PARTNER_CHOICES, None, active=True)
    return [PartnerChoice(doc["_id"], doc["profile"]["name"]) for doc in docs]


async def read_webhook_success(intake: Intake) -> list[WebhookSuccess]:
    """Every partner webhook delivery intake projected (two small fields each), named after the partners."""
    deliveries = await intake.notifications.webhook_states()
    ids = sorted({str(doc.get("recipient_id")) for doc in deliveries})
    return webhook_success(deliveries, await intake.partners.names(ids))


async def _remote(urls: Mapping[str, str]) -> tuple[list[ServiceHealth], list[ServiceMetrics], PartnerLoads]:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
        health, metrics, loads = await asyncio.gather(
            asyncio.gather(*(read_health(http, name, url) for name, url in urls.items())),
            asyncio.gather(*(read_metrics(http, name, url) for name, url in urls.items())),
            read_partner_loads(http, urls),
        )
    return list(health), list(metrics), loads


async def _counts(intake: Intake) -> tuple[list[FunnelStep], list[WebhookSuccess]]:
    """The two full scans (requests, deliveries), behind the funnel and webhook charts."""
    steps, webhooks = await asyncio.gather(read_funnel(intake), read_webhook_success(intake))
    return steps, webhooks


async def collect(intake: Intake, now: datetime) -> Dashboard:
    """Everything on the dashboard, read in parallel; a slow or dead service costs at most the timeout."""
    remote, counted, overdue, unmatched, choices, letters = await asyncio.gather(
        _remote(intake.settings.service_urls),
        _counts(intake),
        read_past_deadline(intake, now),
        read_unmatched(intake),
        read_partner_choices(intake),
        intake.dead_letters.page(LetterFilter(status="open"), DEAD_LETTER_ROWS),
    )
    health, metrics, loads = remote
    steps, webhooks = counted
    return Dashboard(now, health, metrics, steps, overdue, unmatched, choices, letters, loads, webhooks)


@dataclass(frozen=True)
class LagRow:
    service: str
    topic: str | None = None
    total: float | None = None  # None: "no data" (see `note`)
    partitions: tuple[tuple[str, float], ...] = ()  # (partition, messages behind), by partition number
    note: str | None = None


@dataclass(frozen=True)
class OutboxRow:
    service: str
    collection: str | None = None
    backlog: float | None = None
    oldest_pending_s: float | None = None
    note: str | None = None


def lag_rows(metrics: Sequence[ServiceMetrics]) -> list[LagRow]:
    """One row per service and topic (total, and each partition); a service without the metric gets one
    "no data" row."""
    rows: list[LagRow] = []
    for service in metrics:
        by_topic: dict[str, list[tuple[str, float]]] = {}
        for sample in (service.samples or {}).get(CONSUMER_LAG, []):
            by_topic.setdefault(sample.labels.get("topic", ""), []).append(
                (sample.labels.get("partition", ""), sample.value)
            )
        for topic, partitions in sorted(by_topic.items()):
            ordered = tuple(sorted(partitions, key=lambda p: (len(p[0]), p[0])))  # "10" after "9"
            rows.append(LagRow(service.name, topic, sum(lag for _, lag in ordered), ordered))
        if not by_topic:
            rows.append(LagRow(service.name, note=service.problem))
    return rows


def outbox_rows(metrics: Sequence[ServiceMetrics]) -> list[OutboxRow]:
    """Backlog and oldest pending age side by side, per service and collection."""
    rows: list[OutboxRow] = []
    for service in metrics:
        samples = service.samples or {}
        backlog = {s.labels.get("collection", ""): s.value for s in samples.get(OUTBOX_BACKLOG, [])}
        oldest = {s.labels.get("collection", ""): s.value for s in samples.get(OUTBOX_OLDEST, [])}
        for collection in sorted(backlog.keys() | oldest.keys()):
            rows.append(OutboxRow(service.name, collection, backlog.get(collection), oldest.get(collection)))
        if not backlog and not oldest:
            rows.append(OutboxRow(service.name, note=service.problem))
    return rows

"""Every metric the dashboard and the alert rules of deploy/observability read is one the three services really
export: read from their /metrics, started as in production against the real broker and database."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.observability import SYNTHETIC, dashboard_exprs, exposed_names, metric_names, rule_exprs
from tests.support import Infra, eventually
from tests.world import World, new_namespace, running_world


@dataclass(frozen=True)
class Scrape:
    families: dict[str, list[Any]]  # by service

    def names(self) -> set[str]:
        return set().union(*(exposed_names(families) for families in self.families.values()))


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """The three services, ready (running_world polls each /readyz until it answers 200)."""
    async with running_world(new_namespace(infra), tmp_path_factory.mktemp("observability")) as w:
        yield w


@pytest.fixture
async def scrape(world: World) -> Scrape:
    return await scraped(world)


async def scraped(world: World) -> Scrape:
    families = {}
    for name, service in world.services.items():
        response = await world.http.get(f"{service.url}/metrics")
        assert response.status_code == 200, f"{name}: {response.status_code}"
        families[name] = list(text_string_to_metric_families(response.text))
    return Scrape(families)


def test_every_metric_of_the_dashboard_and_the_rules_is_exported(scrape: Scrape) -> None:
    exported = scrape.names()
    used = {where: metric_names(expr) for where, expr in {**dashboard_exprs(), **rule_exprs()}.items()}
    assert sum(map(len, used.values())) >= 30, "the expressions name metrics (is the name extraction working?)"
    missing = {
        where: sorted(names - exported - SYNTHETIC) for where, names in used.items() if names - exported - SYNTHETIC
    }
    assert missing == {}, f"metrics not in any service's /metrics: {missing}"


def test_every_service_exports_the_metrics_its_panels_read(scrape: Scrape) -> None:
    """The families the dashboard reads per service are on each service's own /metrics (shared code: all three)."""
    per_service = {
        "goglobal_http_requests_total",
        "goglobal_http_request_duration_seconds_bucket",
        "goglobal_consumer_lag",
        "goglobal_events_consumed_total",
        "goglobal_event_handling_seconds_bucket",
        "goglobal_events_produced_total",
        "goglobal_dead_letters_total",
    }
    for service, families in scrape.families.items():
        assert per_service - exposed_names(families) == set(), service


def test_readiness_probes_are_counted_as_the_not_ready_alert_expects(scrape: Scrape) -> None:
    """GoGlobalNotReady reads goglobal_http_requests_total{route="/readyz", status=...}: running_world polled
    /readyz until it answered 200, so each service has counted at least one such answer under these labels."""
    for service, families in scrape.families.items():
        probes = [
            sample
            for family in families
            for sample in family.samples
            if sample.name == "goglobal_http_requests_total" and sample.labels.get("route") == "/readyz"
        ]
        assert any(s.labels.get("status") == "200" and s.value >= 1 for s in probes), f"{service}: {probes}"


async def test_the_sampled_gauges_carry_the_labels_the_dashboard_groups_by(world: World) -> None:
    """Gauges a sampler sets soon after start: intake's outboxes by `collection` and its funnel by `status`,
    matching's offers."""
    wanted = {
        "intake": {
            ("goglobal_outbox_backlog", frozenset({"collection"})),
            ("goglobal_outbox_oldest_pending_seconds", frozenset({"collection"})),
            ("goglobal_referrals", frozenset({"status"})),
        },
        "matching": {
            ("goglobal_outbox_backlog", frozenset({"collection"})),
            ("goglobal_open_offers", frozenset()),
            ("goglobal_offers_past_deadline", frozenset()),
        },
    }

    async def sampled() -> bool:
        scrape = await scraped(world)
        found = {
            service: {(s.name, frozenset(s.labels)) for family in families for s in family.samples}
            for service, families in scrape.families.items()
        }
        return all(wanted[service] <= found[service] for service in wanted)

    await eventually(sampled, "the outbox, funnel and offer gauges to be sampled")

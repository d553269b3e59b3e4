"""The console's pure functions: the referral funnel, offers past their deadline, and metric parsing."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from intake.console.data import (
    CONSUMER_LAG,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST,
    FunnelStep,
    LagRow,
    OutboxRow,
    PartnerLoadRow,
    Sample,
    ServiceMetrics,
    funnel,
    lag_rows,
    outbox_rows,
    parse_metrics,
    past_deadline,
    referrals_of,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def referral(status: str, *actions: str) -> dict[str, Any]:
    return {"status": status, "history": [{"action": a} for a in actions]}


def counts(steps: list[FunnelStep]) -> dict[str, int]:
    return {s.name: s.count for s in steps}


def rates(steps: list[FunnelStep]) -> dict[str, float | None]:
    return {s.name: s.rate_percent for s in steps}


def test_the_funnel_counts_each_referral_in_every_step_its_history_or_status_reached() -> None:
    referrals = [
        referral("completed", "submitted", "matched", "offered", "accepted", "in_progress", "completed"),
        referral("in_progress", "submitted", "matched", "offered", "accepted", "in_progress"),
        referral("offered", "submitted", "matched", "offered"),
        referral("unmatched", "submitted", "unmatched"),  # no partner covers the need
        referral("unmatched", "submitted", "matched", "offered", "expired", "unmatched"),  # offered, then gave up
        referral("withdrawn", "submitted", "matched", "withdrawn"),
        referral("submitted", "submitted"),
    ]
    steps = funnel(referrals)
    assert [s.name for s in steps] == ["submitted", "matched", "offered", "accepted", "completed"]
    assert counts(steps) == {"submitted": 7, "matched": 5, "offered": 4, "accepted": 2, "completed": 1}
    assert rates(steps) == {"submitted": None, "matched": 71.4, "offered": 80.0, "accepted": 50.0, "completed": 50.0}


def test_a_status_proves_the_steps_before_it_even_without_history() -> None:
    # e.g. documents written before the history kept every step, or a projection that lost it
    steps = funnel([referral("completed"), referral("declined"), referral("matched"), {"status": "accepted"}])
    assert counts(steps) == {"submitted": 4, "matched": 4, "offered": 3, "accepted": 2, "completed": 1}


def test_statuses_that_can_follow_any_step_prove_nothing_beyond_submission() -> None:
    steps = funnel([referral("closed"), referral("withdrawn"), referral("unmatched"), referral("mystery")])
    assert counts(steps) == {"submitted": 3, "matched": 0, "offered": 0, "accepted": 0, "completed": 0}


def test_conversion_rates_survive_empty_steps() -> None:
    assert funnel([]) == [
        FunnelStep("submitted", 0, None),
        FunnelStep("matched", 0, None),
        FunnelStep("offered", 0, None),
        FunnelStep("accepted", 0, None),
        FunnelStep("completed", 0, None),
    ]
    # nothing matched: offered has no rate (0 of 0), not a division by zero
    assert rates(funnel([referral("unmatched", "submitted", "unmatched")])) == {
        "submitted": None,
        "matched": 0.0,
        "offered": None,
        "accepted": None,
        "completed": None,
    }


def test_a_repeated_action_counts_a_referral_once() -> None:
    twice = referral("offered", "submitted", "matched", "offered", "declined", "offered")
    assert counts(funnel([twice]))["offered"] == 1


def test_referrals_of_flattens_the_projected_request_documents() -> None:
    docs: list[dict[str, Any]] = [
        {"_id": "r1", "referrals": [referral("offered", "submitted"), referral("submitted", "submitted")]},
        {"_id": "r2", "referrals": []},
        {"_id": "r3"},
    ]
    assert len(list(referrals_of(docs))) == 2


def offered(referral_id: str, deadlines: dict[str, datetime], open_offers: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "id": referral_id,
        "status": "offered",
        "open_offers": open_offers,
        "offer_deadlines": deadlines,
        "need": {"service_category": "legal"},
        **extra,
    }


def test_past_deadline_lists_each_open_offer_whose_deadline_passed_oldest_first() -> None:
    docs = [
        {
            "_id": "req-1",
            "enterprise_name": "Bright Solar",
            "referrals": [
                offered("a", {"p1": NOW - timedelta(hours=1), "p2": NOW + timedelta(hours=1)}, ["p1", "p2"]),
                offered("b", {"p3": NOW - timedelta(hours=5)}, []),  # deadline passed, but the offer is closed
                {**offered("c", {"p4": NOW - timedelta(hours=9)}, ["p4"]), "status": "accepted"},
                offered("d", {}, ["p5"]),  # an offer without a deadline never expires
            ],
        },
        {
            "_id": "req-2",
            "enterprise_name": "Pearl Tea",
            "referrals": [offered("e", {"p6": (NOW - timedelta(hours=3)).replace(tzinfo=None)}, ["p6"])],
        },
    ]
    overdue = past_deadline(docs, NOW)
    assert [(o.referral_id, o.partner_id) for o in overdue] == [("e", "p6"), ("a", "p1")]
    assert overdue[0].request_id == "req-2" and overdue[0].enterprise_name == "Pearl Tea"
    assert overdue[0].overdue == timedelta(hours=3) and overdue[0].deadline.tzinfo is not None  # naive BSON = UTC
    assert overdue[1].category == "legal"


def test_a_deadline_exactly_now_is_not_past() -> None:
    docs = [{"_id": "r", "referrals": [offered("a", {"p": NOW}, ["p"])]}]
    assert past_deadline(docs, NOW) == []
    assert len(past_deadline(docs, NOW + timedelta(microseconds=1))) == 1


EXPOSITION = """\
# HELP goglobal_consumer_lag Messages behind the end of each assigned partition
# TYPE goglobal_consumer_lag gauge
goglobal_consumer_lag{partition="1",topic="goglobal.referrals"} 4.0
goglobal_consumer_lag{partition="0",topic="goglobal.referrals"} 0.0
goglobal_consumer_lag{partition="0",topic="goglobal.notifications"} 12.0
# HELP goglobal_outbox_backlog Documents with events not yet published
# TYPE goglobal_outbox_backlog gauge
goglobal_outbox_backlog{collection="service_requests"} 3.0
goglobal_outbox_backlog{collection="partners"} 0.0
# HELP goglobal_outbox_oldest_pending_seconds Age of the oldest unpublished event
# TYPE goglobal_outbox_oldest_pending_seconds gauge
goglobal_outbox_oldest_pending_seconds{collection="service_requests"} 7.5
# HELP goglobal_events_produced_total Events published to Kafka
# TYPE goglobal_events_produced_total counter
goglobal_events_produced_total{topic="goglobal.referrals",type="x"} 9.0
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.5
"""


def test_parse_metrics_keeps_only_the_watched_metrics_with_their_labels() -> None:
    found = parse_metrics(EXPOSITION)
    assert set(found) == {CONSUMER_LAG, OUTBOX_BACKLOG, OUTBOX_OLDEST}
    assert Sample({"topic": "goglobal.referrals", "partition": "1"}, 4.0) in found[CONSUMER_LAG]
    assert len(found[CONSUMER_LAG]) == 3
    assert found[OUTBOX_BACKLOG] == [
        Sample({"collection": "service_requests"}, 3.0),
        Sample({"collection": "partners"}, 0.0),
    ]
    assert found[OUTBOX_OLDEST] == [Sample({"collection": "service_requests"}, 7.5)]


def test_parse_metrics_of_an_exposition_without_them_is_empty() -> None:
    assert parse_metrics("# TYPE up gauge\nup 1\n") == {}
    assert parse_metrics("") == {}


def test_parse_metrics_refuses_text_that_is_not_an_exposition() -> None:
    with pytest.raises(ValueError):
        parse_metrics("<html>not found</html>\n")


def test_lag_and_outbox_rows_say_no_data_for_services_without_the_metrics() -> None:
    metrics = [
        ServiceMetrics("intake", parse_metrics(EXPOSITION)),
        ServiceMetrics("matching", {}),
        ServiceMetrics("notifications", None, "HTTPStatusError: 404"),
    ]
    assert lag_rows(metrics) == [
        LagRow("intake", "goglobal.notifications", 12.0, (("0", 12.0),)),
        LagRow("intake", "goglobal.referrals", 4.0, (("0", 0.0), ("1", 4.0))),
        LagRow("matching"),
        LagRow("notifications", note="HTTPStatusError: 404"),
    ]
    assert outbox_rows(metrics) == [
        OutboxRow("intake", "partners", 0.0, None),
        OutboxRow("intake", "service_requests", 3.0, 7.5),
        OutboxRow("matching"),
        OutboxRow("notifications", note="HTTPStatusError: 404"),
    ]


def test_lag_rows_order_partitions_by_number() -> None:
    samples = {CONSUMER_LAG: [Sample({"topic": "t", "partition": p}, 1.0) for p in ("10", "2", "1")]}
    [row] = lag_rows([ServiceMetrics("matching", samples)])
    assert [p for p, _ in row.partitions] == ["1", "2", "10"] and row.total == 3.0


@pytest.mark.parametrize(
    ("active", "open_referrals", "capacity", "state"),
    [(True, 0, 10, "available"), (True, 10, 10, "full"), (True, 11, 10, "full"), (False, 0, 10, "inactive")],
)
def test_partner_load_state(active: bool, open_referrals: int, capacity: int, state: str) -> None:
    row = PartnerLoadRow("p", "P", active, capacity, open_referrals, 0, 0, 0, 0, 0, None, None)
    assert row.state == state

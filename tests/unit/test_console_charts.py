"""The console's charts: SVG geometry (bars proportional to values, points on the time axis), escaping of every
text that comes from data (partner names are typed by people), the empty state, the lag and backlog history, and
the webhook success counts behind the webhook chart."""

import logging
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from intake.console import charts
from intake.console.charts import Bar, Series, StackedBar, bar_chart, line_chart, nice_ceiling, stacked_bar_chart
from intake.console.data import (
    CONSUMER_LAG,
    OUTBOX_BACKLOG,
    Dashboard,
    FunnelStep,
    PartnerLoads,
    Sample,
    ServiceMetrics,
    WebhookSuccess,
    webhook_success,
)
from intake.console.history import History, quiet_sampling, recorder, summaries
from intake.console.pictures import WEBHOOK_ROWS, funnel_chart, pictures, webhook_chart

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<script>alert(\"x\")</script> & <b>Ledger</b> 'Books'"


def parse(markup: str) -> ET.Element:
    """The chart as XML: this fails on anything not well-formed, e.g. a name that closed a tag."""
    return ET.fromstring(markup)


def find_all(svg: ET.Element, tag: str, css_class: str | None = None) -> list[ET.Element]:
    found = svg.iter(f"{SVG}{tag}")
    return [e for e in found if css_class is None or css_class in (e.get("class") or "").split()]


def texts(svg: ET.Element) -> list[str]:
    return ["".join(e.itertext()) for e in find_all(svg, "text")]


def desc(svg: ET.Element) -> str:
    element = svg.find(f"{SVG}desc")
    assert element is not None
    return "".join(element.itertext())


def width(element: ET.Element) -> float:
    return float(element.get("width") or "nan")


# -- bars ---------------------------------------------------------------------------------------------------


def test_bar_lengths_are_proportional_to_the_values_and_the_largest_fills_the_room() -> None:
    svg = parse(bar_chart("t-bars", "Test", [Bar("a", 40), Bar("b", 10), Bar("c", 0), Bar("d", 30)]))
    fills = {e.get("data-label"): e.find(f"{SVG}rect") for e in find_all(svg, "g", "bar")}
    lengths = {label: width(rect) for label, rect in fills.items() if rect is not None}
    room = charts.WIDTH - charts.LABEL_WIDTH - charts.VALUE_WIDTH
    assert lengths == {"a": room, "b": room / 4, "c": 0.0, "d": room * 3 / 4}
    assert [e.get("data-value") for e in find_all(svg, "g", "bar")] == ["40", "10", "0", "30"]
    assert desc(svg) == "a: 40; b: 10; c: 0; d: 30"
    assert (svg.get("role"), svg.get("aria-labelledby")) == ("img", "t-bars-title t-bars-desc")


def test_the_funnel_chart_draws_the_funnel_steps_numbers_and_rates() -> None:
    steps = [FunnelStep("submitted", 8, None), FunnelStep("matched", 6, 75.0), FunnelStep("offered", 0, 0.0)]
    svg = parse(funnel_chart(steps))
    bars = find_all(svg, "g", "bar")
    assert [(b.get("data-label"), b.get("data-value")) for b in bars] == [
        ("submitted", "8"),
        ("matched", "6"),
        ("offered", "0"),
    ]
    assert "matched: 6 (75.0 % of previous)" in desc(svg)
    assert "6 (75.0 % of previous)" in texts(svg)


def test_text_from_data_is_escaped_everywhere_it_appears() -> None:
    bars = [StackedBar(HOSTILE, (("delivered", 3), ("failed", 1)), key='p"><script>', note=" (75.0 %)")]
    for markup in (
        bar_chart("t-esc", HOSTILE, [Bar(HOSTILE, 2, note=HOSTILE)]),
        stacked_bar_chart("t-esc", HOSTILE, bars),
        line_chart("t-esc", HOSTILE, [Series(HOSTILE, ((NOW, 1.0),))], NOW - timedelta(hours=1), NOW, timedelta(1)),
    ):
        assert "<script" not in markup and "<b>" not in markup
        svg = parse(markup)  # well-formed: nothing closed a tag or an attribute early
        assert not list(svg.iter("script")) and not list(svg.iter(f"{SVG}script"))
        assert HOSTILE in "".join(svg.itertext())  # and the text still reads as typed
        labelled = [e for e in svg.iter() if e.get("data-label") or e.get("data-series")]
        assert {e.get("data-label") or e.get("data-series") for e in labelled} == {HOSTILE}


def test_part_names_become_inert_class_names() -> None:
    markup = stacked_bar_chart("t-class", "T", [StackedBar("p", (('x" onload="alert(1)', 1),))])
    svg = parse(markup)
    assert "onload" not in {attribute for e in svg.iter() for attribute in e.attrib}
    assert [r.get("class") for r in find_all(svg, "rect", "part")] == ["part part-x-onload-alert-1"]


def test_a_chart_id_must_be_a_plain_identifier() -> None:
    for wrong in ('x" onclick="y', "chart\n", "Chart"):
        with pytest.raises(ValueError, match="not a chart id"):
            bar_chart(wrong, "T", [Bar("a", 1)])


@pytest.mark.parametrize(
    "markup",
    [
        bar_chart("t-empty", "Funnel", []),
        bar_chart("t-empty", "Funnel", [Bar("submitted", 0), Bar("matched", 0)]),
        stacked_bar_chart("t-empty", "Webhooks", []),
        line_chart("t-empty", "Lag", [], NOW - timedelta(hours=1), NOW, timedelta(seconds=25)),
        line_chart("t-empty", "Lag", [Series("intake", ())], NOW - timedelta(hours=1), NOW, timedelta(seconds=25)),
    ],
)
def test_no_data_draws_a_framed_no_data_yet_and_says_so(markup: str) -> None:
    svg = parse(markup)
    assert "chart-empty" in (svg.get("class") or "")
    assert texts(svg) == ["No data yet"]
    assert desc(svg) == "No data yet."
    assert not find_all(svg, "g", "bar") and not find_all(svg, "g", "series")


def test_stacked_bars_split_each_row_by_part_and_scale_rows_by_their_totals() -> None:
    svg = parse(
        stacked_bar_chart(
            "t-stack",
            "T",
            [
                StackedBar("A", (("delivered", 6), ("failed", 2)), key="a"),
                StackedBar("B", (("delivered", 4),), key="b"),
            ],
        )
    )
    rows = {row.get("data-key"): row for row in find_all(svg, "g", "bar")}
    room = charts.WIDTH - charts.LABEL_WIDTH - charts.VALUE_WIDTH
    parts_a = [(r.get("data-part"), r.get("data-value"), width(r)) for r in find_all(rows["a"], "rect", "part")]
    assert parts_a == [("delivered", "6", room * 6 / 8), ("failed", "2", room * 2 / 8)]
    assert [width(r) for r in find_all(rows["b"], "rect", "part")] == [room * 4 / 8]
    segment_x = [float(r.get("x") or 0) for r in find_all(rows["a"], "rect", "part")]
    assert segment_x == [charts.LABEL_WIDTH, charts.LABEL_WIDTH + room * 6 / 8]  # side by side, not overlapping
    assert desc(svg) == "A: 6 delivered, 2 failed; B: 4 delivered"
    assert [texts(rows[k])[-1] for k in ("a", "b")] == ["6 delivered · 2 failed", "4 delivered"]


# -- lines --------------------------------------------------------------------------------------------------


def coordinates(polyline: ET.Element) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (pair.split(",") for pair in (polyline.get("points") or "").split())]


def test_points_sit_on_the_time_axis_and_values_on_a_zero_based_axis() -> None:
    start = NOW - timedelta(hours=1)
    lag = Series("matching", ((start, 0.0), (NOW - timedelta(minutes=30), 40.0), (NOW, 20.0)))
    svg = parse(line_chart("t-line", "Lag", [lag], start, NOW, timedelta(hours=1)))
    (polyline,) = find_all(svg, "polyline")
    left, right = charts.PLOT_LEFT, charts.LINE_WIDTH - charts.PLOT_RIGHT
    bottom, top = charts.PLOT_TOP + charts.PLOT_HEIGHT, charts.PLOT_TOP
    assert nice_ceiling(40.0) == 40.0  # the axis top
    assert coordinates(polyline) == [
        (left, bottom),
        ((left + right) / 2, top),
        (right, (top + bottom) / 2),
    ]
    (series,) = find_all(svg, "g", "series")
    assert (series.get("data-series"), series.get("data-points"), series.get("data-value")) == ("matching", "3", "20")
    assert desc(svg) == "matching: 20 at 12:00 (lowest 0, highest 40, 3 samples) (from 11:00 to 12:00 UTC)"
    assert "matching: 20" in texts(svg)  # the legend spells the latest value


def test_missing_samples_break_the_line_and_a_lone_point_is_still_drawn() -> None:
    start = NOW - timedelta(hours=1)
    minute = timedelta(minutes=1)
    points = ((start, 1.0), (start + minute, 2.0), (start + 10 * minute, 3.0), (start + 11 * minute, 1.0))
    svg = parse(line_chart("t-gap", "Lag", [Series("a", points)], start, NOW, gap=2 * minute))
    assert [len(coordinates(p)) for p in find_all(svg, "polyline")] == [2, 2]

    svg = parse(line_chart("t-one", "Lag", [Series("a", ((NOW, 5.0),))], start, NOW, gap=minute))
    (dot,) = find_all(svg, "circle", "dot")
    assert float(dot.get("cx") or 0) == charts.LINE_WIDTH - charts.PLOT_RIGHT


def test_every_series_gets_its_own_legend_entry_in_rows_under_the_plot() -> None:
    start = NOW - timedelta(hours=1)
    many = [Series(f"service-{n}", ((NOW, float(n)),)) for n in range(5)]
    svg = parse(line_chart("t-legend", "Lag", many, start, NOW, timedelta(minutes=1)))
    legend = [t for t in texts(svg) if t.startswith("service-")]
    assert legend == [f"service-{n}: {n}" for n in range(5)]
    rows = {float(e.get("y") or 0) for e in find_all(svg, "text", "legend-text")}
    assert len(rows) == 2 and float(svg.get("height") or 0) > max(rows)  # two rows, both inside the picture


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (0.4, 1), (1, 1), (1.5, 2), (3, 4), (4.5, 5), (7, 8), (9, 10), (10, 10), (11, 20), (30, 40), (4200, 5000)],
)
def test_the_value_axis_ends_at_a_round_number(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == ceiling


# -- history ------------------------------------------------------------------------------------------------


def metrics(name: str, lag: list[float] | None, backlog: list[float] | None = None) -> ServiceMetrics:
    samples: dict[str, list[Sample]] = {}
    if lag is not None:
        samples[CONSUMER_LAG] = [Sample({"topic": "t", "partition": str(i)}, v) for i, v in enumerate(lag)]
    if backlog is not None:
        samples[OUTBOX_BACKLOG] = [Sample({"collection": f"c{i}"}, v) for i, v in enumerate(backlog)]
    return ServiceMetrics(name, samples)


def test_history_keeps_per_service_totals_and_leaves_gaps_for_what_it_could_not_read() -> None:
    history = History(window=timedelta(minutes=10), interval_s=60)
    history.record(
        NOW,
        [
            metrics("matching", [3, 4], [2]),
            metrics("notifications", [1], [float("nan")]),  # NaN is no number of documents: a gap
            ServiceMetrics("x", None),
        ],
    )
    history.record(
        NOW + timedelta(minutes=1), [metrics("matching", [0, 1], [0]), ServiceMetrics("notifications", None)]
    )
    later = NOW + timedelta(minutes=1)
    assert history.series("lag", later) == [
        Series("matching", ((NOW, 7.0), (later, 1.0))),
        Series("notifications", ((NOW, 1.0),)),
    ]
    assert history.series("backlog", later) == [Series("matching", ((NOW, 2.0), (later, 0.0)))]
    (matching, _) = summaries(history.series("lag", later))
    assert (matching.samples, matching.latest, matching.lowest, matching.highest) == (2, 1.0, 1.0, 7.0)


def test_history_is_a_bounded_ring_that_forgets_what_left_the_window() -> None:
    history = History(window=timedelta(minutes=10), interval_s=60)
    assert history.capacity == 11
    for minute in range(30):
        history.record(NOW + timedelta(minutes=minute), [metrics("intake", [float(minute)])])
    (kept,) = history.series("lag", NOW + timedelta(minutes=29))
    assert len(kept.points) == 11 and kept.points[0] == (NOW + timedelta(minutes=19), 19.0)
    (later,) = history.series("lag", NOW + timedelta(minutes=35))  # no sample for a while: the window moved on
    assert [value for _, value in later.points] == [25.0, 26.0, 27.0, 28.0, 29.0]
    assert history.series("lag", NOW + timedelta(hours=2)) == []


# -- webhook success ----------------------------------------------------------------------------------------


def test_webhook_success_counts_latest_states_per_partner_worst_first() -> None:
    deliveries = [
        *({"recipient_id": "calm", "status": "delivered"} for _ in range(5)),
        *({"recipient_id": "flaky", "status": s} for s in ("delivered", "failed", "failed", "retrying")),
        {"recipient_id": "slow", "status": "retrying"},
        {"recipient_id": "calm", "status": "pending"},  # not a state a delivery ends in: ignored
    ]
    rows = webhook_success(deliveries, {"flaky": "Flaky & Co", "calm": "Calm Ltd"})
    assert rows == [
        WebhookSuccess("flaky", "Flaky & Co", delivered=1, retrying=1, failed=2),
        WebhookSuccess("calm", "Calm Ltd", delivered=5),
        WebhookSuccess("slow", "slow", retrying=1),  # no known name: its id
    ]
    assert [r.success_percent for r in rows] == [33.3, 100.0, None]


def test_the_webhook_chart_draws_each_partners_counts_and_at_most_its_row_limit() -> None:
    rows = [WebhookSuccess(f"p{n:02d}", f"Partner {n}", delivered=n, failed=1) for n in range(WEBHOOK_ROWS + 3)]
    svg = parse(webhook_chart(rows))
    drawn = find_all(svg, "g", "bar")
    assert len(drawn) == WEBHOOK_ROWS
    title = svg.find(f"{SVG}title")
    assert title is not None and f"({WEBHOOK_ROWS} of {WEBHOOK_ROWS + 3} partners" in (title.text or "")
    third = drawn[3]
    parts = {r.get("data-part"): r.get("data-value") for r in find_all(third, "rect", "part")}
    assert (third.get("data-key"), parts) == ("p03", {"delivered": "3", "retrying": "0", "failed": "1"})
    assert "Partner 3: 3 delivered, 0 retrying, 1 failed (75.0 % delivered)" in desc(svg)


def test_the_dashboard_pictures_come_from_the_dashboard_and_the_history() -> None:
    history = History()
    history.record(NOW - timedelta(minutes=5), [metrics("intake", [2], [1])])
    board = Dashboard(
        NOW, [], [], [FunnelStep("submitted", 2, None)], [], [], [], [], PartnerLoads([]), [WebhookSuccess("p", "P", 1)]
    )
    drawn = pictures(board, history, NOW)
    assert parse(drawn.funnel).get("id") == "funnel-chart"
    assert [e.get("data-value") for e in find_all(parse(drawn.lag), "g", "series")] == ["2"]
    assert [e.get("data-value") for e in find_all(parse(drawn.backlog), "g", "series")] == ["1"]
    assert [e.get("data-key") for e in find_all(parse(drawn.webhooks), "g", "bar")] == ["p"]
    assert [s.name for s in drawn.lag_summary] == ["intake"] and drawn.interval_s == history.interval_s


async def test_the_recorder_reads_every_service_and_logs_nothing_routine(caplog: pytest.LogCaptureFixture) -> None:
    exposition = (
        "# TYPE goglobal_consumer_lag gauge\n"
        'goglobal_consumer_lag{topic="t",partition="0"} 4\n'
        'goglobal_consumer_lag{topic="t",partition="1"} 5\n'
        "# TYPE goglobal_outbox_backlog gauge\n"
        'goglobal_outbox_backlog{collection="plans"} 2\n'
    )

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "down":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, text=exposition)

    history = History()
    quiet_sampling()
    with caplog.at_level(logging.INFO, logger="httpx"):
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as sampling:
            urls = {"matching": "http://up", "notifications": "http://down"}
            await recorder(history, urls, lambda: NOW, sampling)()
        assert not [r for r in caplog.records if r.name == "httpx"]  # the sampler's requests: not logged
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            await http.get("http://up/metrics")
        assert [r for r in caplog.records if r.name == "httpx"]  # anyone else's still are
    assert history.series("lag", NOW) == [Series("matching", ((NOW, 9.0),))]  # notifications: a gap
    assert history.series("backlog", NOW) == [Series("matching", ((NOW, 2.0),))]

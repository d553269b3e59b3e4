"""Which chart shows what: the dashboard's numbers (the same the tables show) turned into charts.py's bars and
series. Pure, so a test can hold a chart's numbers against the data it was drawn from."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup

from intake.console.charts import Bar, StackedBar, bar_chart, line_chart, stacked_bar_chart
from intake.console.data import Dashboard, FunnelStep, WebhookSuccess
from intake.console.history import History, SeriesSummary, summaries

WEBHOOK_ROWS = 20  # partners drawn; the table beside the chart lists them all


@dataclass(frozen=True)
class Pictures:
    funnel: Markup
    lag: Markup
    backlog: Markup
    webhooks: Markup
    lag_summary: list[SeriesSummary]
    backlog_summary: list[SeriesSummary]
    interval_s: float


def funnel_chart(steps: Sequence[FunnelStep]) -> Markup:
    bars = [
        Bar(step.name, step.count, f" ({step.rate_percent:.1f} % of previous)" if step.rate_percent is not None else "")
        for step in steps
    ]
    return bar_chart("funnel-chart", "Referral funnel: referrals that reached each step", bars)


def webhook_chart(rows: Sequence[WebhookSuccess]) -> Markup:
    shown = rows[:WEBHOOK_ROWS]
    title = "Webhook deliveries per partner, by latest state"
    if len(shown) < len(rows):
        title += f" ({len(shown)} of {len(rows)} partners, most failures first)"
    bars = [
        StackedBar(
            row.name,
            (("delivered", row.delivered), ("retrying", row.retrying), ("failed", row.failed)),
            key=row.partner_id,
            note=f" ({row.success_percent:.1f} % delivered)" if row.success_percent is not None else "",
        )
        for row in shown
    ]
    return stacked_bar_chart("webhook-chart", title, bars)


def pictures(board: Dashboard, history: History, now: datetime) -> Pictures:
    lag, backlog = history.series("lag", now), history.series("backlog", now)
    start = now - history.window
    return Pictures(
        funnel=funnel_chart(board.funnel),
        lag=line_chart(
            "lag-chart", "Consumer lag over the last hour (messages behind, per service)", lag, start, now, history.gap
        ),
        backlog=line_chart(
            "backlog-chart",
            "Outbox backlog over the last hour (documents pending, per service)",
            backlog,
            start,
            now,
            history.gap,
        ),
        webhooks=webhook_chart(board.webhooks),
        lag_summary=summaries(lag),
        backlog_summary=summaries(backlog),
        interval_s=history.interval_s,
    )

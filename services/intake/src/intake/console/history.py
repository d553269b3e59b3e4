"""The last hour of consumer lag and outbox backlog, per service, for the console's time-series charts.

A loop on intake's background loops reads every service's /metrics (the reading the dashboard's tables make on each
page view) every HISTORY_INTERVAL_S and keeps the totals in bounded ring buffers. Nothing is stored: a restarted
replica starts a new hour, and each replica keeps its own (they read the same services, so they agree). Without a
Prometheus, this is the only memory of how lag and backlog moved."""

import asyncio
import contextvars
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import httpx

from goglobal_shared import sampler
from intake.components import Intake
from intake.console.charts import Series
from intake.console.data import CONSUMER_LAG, HTTP_TIMEOUT_S, OUTBOX_BACKLOG, ServiceMetrics, read_metrics

HISTORY_INTERVAL_S = 10.0
HISTORY_WINDOW = timedelta(hours=1)
Kind = Literal["lag", "backlog"]
_METRICS: dict[Kind, str] = {"lag": CONSUMER_LAG, "backlog": OUTBOX_BACKLOG}
_SAMPLING = contextvars.ContextVar("console_history_sampling", default=False)


@dataclass(frozen=True)
class SeriesSummary:
    """One series in words, for the table beside its chart."""

    name: str
    samples: int
    latest: float
    latest_at: datetime
    lowest: float
    highest: float


class History:
    """Ring buffers of (time, total) per kind and service: at most one window of samples each, so memory stays
    bounded however long the process runs (the services are the configured few)."""

    def __init__(self, window: timedelta = HISTORY_WINDOW, interval_s: float = HISTORY_INTERVAL_S) -> None:
        self.window = window
        self.interval_s = interval_s
        self.capacity = math.ceil(window.total_seconds() / interval_s) + 1
        self._buffers: dict[tuple[Kind, str], deque[tuple[datetime, float]]] = {}

    @property
    def gap(self) -> timedelta:
        """Two points further apart than this have samples missing between them (the chart breaks its line)."""
        return timedelta(seconds=self.interval_s * 2.5)

    def record(self, at: datetime, metrics: Iterable[ServiceMetrics]) -> None:
        """One point per service and kind: lag summed over topics and partitions, backlog over collections. A
        service that could not be read, or does not export the metric (or not as a number), gets no point: a gap,
        not a false zero."""
        for service in metrics:
            for kind, metric in _METRICS.items():
                total = sum(sample.value for sample in (service.samples or {}).get(metric, []))
                if metric in (service.samples or {}) and math.isfinite(total):
                    buffer = self._buffers.setdefault((kind, service.name), deque(maxlen=self.capacity))
                    buffer.append((at, total))

    def series(self, kind: Kind, now: datetime) -> list[Series]:
        """Each service's points within the window that ends at `now`, by service name."""
        since = now - self.window
        found = []
        for (buffer_kind, name), buffer in sorted(self._buffers.items()):
            points = tuple(point for point in buffer if since <= point[0] <= now)
            if buffer_kind == kind and points:
                found.append(Series(name, points))
        return found


def summaries(series: Sequence[Series]) -> list[SeriesSummary]:
    rows = []
    for one in series:
        values = [value for _, value in one.points]
        at, latest = one.points[-1]
        rows.append(SeriesSummary(one.name, len(values), latest, at, min(values), max(values)))
    return rows


class _QuietSampling(logging.Filter):
    """Drops httpx's INFO line for each of the sampler's requests (one per service every few seconds, forever);
    the dashboard's own reads and every warning still log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not _SAMPLING.get()


def quiet_sampling() -> None:
    """Installs the filter on httpx's logger, once."""
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _QuietSampling) for f in httpx_log.filters):
        httpx_log.addFilter(_QuietSampling())


def recorder(
    history: History, urls: Mapping[str, str], clock: Callable[[], datetime], http: httpx.AsyncClient
) -> sampler.Sample:
    """`http` lives as long as the sampler: a client per reading would build a TLS context every time."""

    async def sample() -> None:
        token = _SAMPLING.set(True)
        try:
            metrics = await asyncio.gather(*(read_metrics(http, name, url) for name, url in urls.items()))
        finally:
            _SAMPLING.reset(token)
        history.record(clock(), metrics)

    return sample


def start_history(intake: Intake) -> History:
    """Samples on intake's background loops: stopped with them, and a failed reading is skipped (MetricsSampler),
    never fatal to the process."""
    history = History()
    quiet_sampling()
    http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_S)
    sample = recorder(history, intake.settings.service_urls, intake.clock, http)
    loop = sampler.MetricsSampler([sample], history.interval_s)
    intake.runtime.loops.start(loop, loop.run(), "console-history")
    intake.runtime.on_stop(http.aclose)
    return history

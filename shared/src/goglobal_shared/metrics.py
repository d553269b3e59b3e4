"""The Prometheus metrics every service exposes on `/metrics` (prometheus-client, default registry).

Scrapers add the `job`/`service` label; metric names say what they measure."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("goglobal_http_requests", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram("goglobal_http_request_duration_seconds", "HTTP request latency", ["method", "route"])
EVENTS_CONSUMED = Counter(
    "goglobal_events_consumed",
    "Records consumed, by outcome (handled, ignored, duplicate, dead_lettered, retried)",
    ["topic", "type", "outcome"],
)
EVENT_HANDLING = Histogram(
    "goglobal_event_handling_seconds", "Time to handle one event (a batch's time shared among its events)", ["type"]
)
EVENTS_PRODUCED = Counter("goglobal_events_produced", "Events published to Kafka", ["topic", "type"])
DEAD_LETTERS = Counter("goglobal_dead_letters", "Records sent to a dead-letter topic", ["topic", "error_class"])
CONSUMER_LAG = Gauge(
    "goglobal_consumer_lag", "Messages behind the end of each assigned partition", ["topic", "partition"]
)
OUTBOX_BACKLOG = Gauge("goglobal_outbox_backlog", "Documents with events not yet published", ["collection"])
OUTBOX_OLDEST = Gauge("goglobal_outbox_oldest_pending_seconds", "Age of the oldest unpublished event", ["collection"])
DELIVERIES = Counter("goglobal_deliveries", "Webhook and e-mail delivery attempts, by outcome", ["channel", "outcome"])
OPEN_OFFERS = Gauge("goglobal_open_offers", "Referral offers waiting for a partner's answer")
OFFERS_PAST_DEADLINE = Gauge("goglobal_offers_past_deadline", "Open offers whose response window has passed")
REFERRALS = Gauge("goglobal_referrals", "Referrals by status", ["status"])
DB_COMMANDS = Counter(
    "goglobal_db_commands",
    "Database commands sent, by command name and the collection it names ('' for none, e.g. ping)",
    ["service", "command", "collection"],
)

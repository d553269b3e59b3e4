"""The headers of a webhook attempt, signed per Standard Webhooks. Pure."""

from datetime import datetime

from standardwebhooks import Webhook

from goglobal_contract.envelope import STRUCTURED_CONTENT_TYPE

USER_AGENT = "GoGlobal-Webhooks/1.0 (+https://goglobal.hk/docs/partners)"


def signature_header(secrets: list[str], message_id: str, timestamp: datetime, body: bytes) -> str:
    """Space-separated `v1,<sig>` entries: during a rotation both the old and the new secret sign."""
    return " ".join(Webhook(secret).sign(message_id, timestamp, body.decode()) for secret in secrets)


def webhook_headers(
    message_id: str, secrets: list[str], now: datetime, body: bytes, traceparent: str | None
) -> dict[str, str]:
    """`message_id` is the event's id, the same on every attempt: the partner dedupes on it."""
    headers = {
        "content-type": STRUCTURED_CONTENT_TYPE,
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature_header(secrets, message_id, now, body),
    }
    return {**headers, "traceparent": traceparent} if traceparent else headers

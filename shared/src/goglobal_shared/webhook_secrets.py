"""Per-partner webhook signing secrets, derived rather than stored or sent.

Intake (which shows a partner its secret) and notifications (which signs) both hold the same master key
from the secret store; a partner's secret is HMAC-SHA256(master key, "<partner id>:<generation>"), so it
never travels through Kafka and never sits in a database. Rotation increments the generation; during the
overlap the previous generation's secret signs too.
"""

import base64
import hashlib
import hmac
from datetime import datetime

SECRET_PREFIX = "whsec_"


def partner_secret(master_key: str, partner_id: str, generation: int) -> str:
    """A Standard Webhooks secret (`whsec_` + base64 of 32 bytes)."""
    digest = hmac.new(master_key.encode(), f"{partner_id}:{generation}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(digest).decode()


def signing_secrets(
    master_key: str, partner_id: str, generation: int, previous_valid_until: datetime | None, now: datetime
) -> list[str]:
    """The secrets a delivery is signed with right now: the current one, plus the previous during the overlap."""
    secrets = [partner_secret(master_key, partner_id, generation)]
    if generation > 1 and previous_valid_until is not None and now < previous_valid_until:
        secrets.append(partner_secret(master_key, partner_id, generation - 1))
    return secrets

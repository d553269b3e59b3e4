"""Generates the published event contract from the payload models in `goglobal_contract.registry`:

- `docs/schemas/<ce type>.json`: one JSON Schema (draft 2020-12) per event type, with an example;
- `docs/asyncapi.yaml`: an AsyncAPI 3.0.0 document with the topics, messages, Kafka bindings and
  which service sends and receives what.

Run from the repository root (`make docs`):

    python -m tools.asyncapi --out docs           # writes the files, removes stale schemas
    python -m tools.asyncapi --out docs --check   # exit 1 naming every file that differs

Every event type needs a hand-made example in `EXAMPLES`; each is validated by its model while generating, so a
renamed, removed or newly required field stops the generator instead of publishing a wrong example. A new event
type also needs a place in `TOPICS` and `FLOWS`. The output is deterministic so `--check` can diff it.

The published schemas omit `additionalProperties: false` (the models forbid extra fields on the producing side):
consumers must ignore unknown fields, so that adding an optional field does not break a validating consumer.

Needs PyYAML, a development dependency of the workspace.
"""

import argparse
import json
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic.json_schema import models_json_schema

from goglobal_contract.envelope import CONTENT_TYPE
from goglobal_contract.event_base import EventPayload
from goglobal_contract.events import (
    ApiKeyRevoked,
    EnterpriseUpserted,
    PartnerUpserted,
    ReferralAccepted,
    ReferralAssigned,
    ReferralClosed,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralMatched,
    ReferralOffered,
    ReferralOfferWithdrawn,
    ReferralRated,
    ReferralStarted,
    ReferralSubmitted,
    ReferralUnmatched,
    ReferralWithdrawn,
)
from goglobal_contract.notification_events import (
    NOTIFICATION_PAYLOADS,
    EndpointDisabled,
    NotificationCreated,
    NotificationDelivered,
    NotificationFailed,
    RedeliveryRequested,
)
from goglobal_contract.partner_events import (
    PARTNER_PAYLOADS,
    OfferExpiredForPartner,
    OfferWithdrawnFromPartner,
    ReferralAcceptedByPartner,
    ReferralClosedByOperator,
    ReferralOfferedToPartner,
    ReferralRatedByEnterprise,
    ReferralWithdrawnByEnterprise,
)
from goglobal_contract.registry import API_KEY_PAYLOADS, PAYLOADS, REFERRAL_PAYLOADS

Json = dict[str, Any]
Payload = type[EventPayload]

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_VERSION = "1.0.0"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE = "urn:goglobal:schema:"  # becomes a URL once the schemas are published somewhere
KAFKA_BINDING_VERSION = "0.5.0"
ASYNCAPI_FILE = "asyncapi.yaml"
SCHEMA_DIR = "schemas"
COMPONENT_REF = "#/components/schemas/{model}"

DESCRIPTION = """\
Events of the GoGlobal Referral Network: the referral lifecycle, the partner and enterprise directory, \
notifications, and what each partner organisation receives on its own topic.

Every Kafka record is a CloudEvents 1.0 event in the Kafka protocol binding's binary content mode: the \
attributes travel as headers (`ce_id`, `ce_type`, `ce_source`, `ce_subject`, `ce_time`, `ce_specversion`), \
`content-type` is `application/json`, the value is the JSON payload described here, and the record key equals \
`ce_subject`. Order holds per key (for referral events: per referral). Delivery is at least once: consumers \
dedupe on `ce_id`. Topic names carry the deployment's prefix (`GOGLOBAL_TOPIC_PREFIX`, empty in production). \
Webhooks deliver the same partner events in CloudEvents JSON structured mode, signed as Standard Webhooks \
(see docs/partners.md).

Schema evolution. The last segment of the CloudEvents type is its version (`...referral_offered.v1`). \
Additive changes (new optional fields, new event types) keep the `v1` type. A breaking change (removing, \
renaming or retyping a field, or changing what a field or event means) gets a new `v2` type; both versions are \
published side by side during a transition announced to partners, after which `v1` stops. Consumers must \
ignore unknown fields and event types they do not handle, so the published schemas allow additional properties.
"""


@dataclass(frozen=True)
class Example:
    """A realistic payload of one event type, the record key it travels under, and when the event is sent."""

    key: str
    when: str
    data: Json
    source: str | None = None  # default: the producing service's source
    time: str | None = None  # default: the payload's last `at` / `*_at` field


@dataclass(frozen=True)
class Topic:
    channel: str
    address: str
    title: str
    key: str
    description: str
    payloads: tuple[Payload, ...]
    compacted: bool = False


@dataclass(frozen=True)
class Flow:
    """A service sends or receives some messages of a channel (one AsyncAPI operation)."""

    service: str
    action: Literal["send", "receive"]
    channel: str
    payloads: tuple[Payload, ...]
    summary: str
    group: str | None = None


REFERRAL_ID = "18a3f2c4b5d6e7f80a1b2c3d4e5f6a7b"
SECOND_REFERRAL_ID = "18a3f2c4b5d6e7f8c9d0e1f2a3b4c5d6"
REQUEST_ID = "18a3f2c4b5d6e7f0f1e2d3c4b5a69788"
ENTERPRISE_ID = "18a3f1d2c3b4a5960718293a4b5c6d7e"
PARTNER_ID = "lexbridge-legal"
ENTERPRISE_CONTACT: Json = {"name": "Li Wei", "email": "li.wei@brightsolar.example.cn", "phone": "+8613812345678"}
NEED: Json = {
    "service_category": "legal",
    "target_markets": ["AE", "SA"],
    "description": "Set up a Dubai subsidiary to distribute rooftop solar inverters in the GCC",
    "urgency": "high",
    "budget_band": "from_50k_to_200k_usd",
    "languages": ["zh-Hans", "en"],
}
ATTEMPT_OK: Json = {"at": "2026-03-02T01:15:03Z", "status_code": 200, "latency_ms": 184}
ATTEMPT_503: Json = {"at": "2026-03-02T01:15:03Z", "status_code": 503, "latency_ms": 912, "error": "HTTP 503"}

REFERRAL_EXAMPLES: dict[Payload, Example] = {
    ReferralSubmitted: Example(
        REFERRAL_ID,
        "An enterprise submitted a service request: one event per need, each need being a referral.",
        {
            "referral_id": REFERRAL_ID,
            "request_id": REQUEST_ID,
            "enterprise_id": ENTERPRISE_ID,
            "enterprise_name": "Shenzhen Bright Solar Technology Co., Ltd.",
            "enterprise_sector": "C27",
            "enterprise_languages": ["zh-Hans", "en"],
            "need": NEED,
            "submitted_at": "2026-03-02T01:15:00Z",
        },
    ),
    ReferralMatched: Example(
        REFERRAL_ID,
        "Matching ranked the partners that fit the referral, best first, with the reasons of each score.",
        {
            "referral_id": REFERRAL_ID,
            "candidates": [
                {
                    "partner_id": PARTNER_ID,
                    "partner_name": "LexBridge Legal (Hong Kong)",
                    "score": 0.92,
                    "reasons": ["offers legal", "covers AE, SA", "speaks zh-Hans, en", "has capacity (3 of 12 used)"],
                },
                {
                    "partner_id": "gulf-bridge-law",
                    "partner_name": "Gulf Bridge Law Office",
                    "score": 0.74,
                    "reasons": ["offers legal", "covers AE", "speaks en"],
                },
            ],
            "matched_at": "2026-03-02T01:15:02Z",
        },
    ),
    ReferralUnmatched: Example(
        REFERRAL_ID,
        "No partner fits, or every candidate declined or let its offer expire: the referral waits for an operator.",
        {
            "referral_id": REFERRAL_ID,
            "reason": "every candidate declined or let the offer expire",
            "unmatched_at": "2026-03-06T01:15:02Z",
        },
    ),
    ReferralOffered: Example(
        REFERRAL_ID,
        "Matching offered the referral to a partner, to be answered by `respond_by`; `round` counts the offers.",
        {
            "referral_id": REFERRAL_ID,
            "partner_id": PARTNER_ID,
            "partner_name": "LexBridge Legal (Hong Kong)",
            "offered_at": "2026-03-02T01:15:02Z",
            "respond_by": "2026-03-04T01:15:02Z",
            "round": 1,
        },
    ),
    ReferralExpired: Example(
        REFERRAL_ID,
        "A partner let its offer's response window pass; matching offers the next candidate.",
        {
            "referral_id": REFERRAL_ID,
            "partner_id": "gulf-bridge-law",
            "offered_at": "2026-03-02T01:15:02Z",
            "expired_at": "2026-03-04T01:15:02Z",
        },
    ),
    ReferralOfferWithdrawn: Example(
        REFERRAL_ID,
        "An open offer was taken back: another partner accepted first, or the referral ended.",
        {
            "referral_id": REFERRAL_ID,
            "partner_id": "gulf-bridge-law",
            "reason": "accepted_elsewhere",
            "withdrawn_at": "2026-03-02T06:40:01Z",
        },
    ),
    ReferralAccepted: Example(
        REFERRAL_ID,
        "The partner accepted the offer.",
        {"referral_id": REFERRAL_ID, "partner_id": PARTNER_ID, "accepted_at": "2026-03-02T06:40:00Z"},
    ),
    ReferralDeclined: Example(
        REFERRAL_ID,
        "The partner declined the offer, with a reason.",
        {
            "referral_id": REFERRAL_ID,
            "partner_id": "gulf-bridge-law",
            "reason": "no_capacity",
            "text": "Fully booked until April",
            "declined_at": "2026-03-02T03:05:00Z",
        },
    ),
    ReferralStarted: Example(
        REFERRAL_ID,
        "The partner started working on the referral.",
        {"referral_id": REFERRAL_ID, "partner_id": PARTNER_ID, "started_at": "2026-03-03T02:00:00Z"},
    ),
    ReferralCompleted: Example(
        REFERRAL_ID,
        "The partner reported the outcome.",
        {
            "referral_id": REFERRAL_ID,
            "partner_id": PARTNER_ID,
            "outcome": "engaged",
            "notes": "Company set up in DMCC",
            "completed_at": "2026-04-20T09:30:00Z",
        },
    ),
    ReferralRated: Example(
        REFERRAL_ID,
        "The enterprise rated the partner's work on a completed referral.",
        {
            "referral_id": REFERRAL_ID,
            "partner_id": PARTNER_ID,
            "score": 5,
            "comment": "quick and clear",
            "rated_at": "2026-04-22T08:00:00Z",
        },
    ),
    ReferralWithdrawn: Example(
        SECOND_REFERRAL_ID,
        "The enterprise withdrew the need; open offers are cancelled.",
        {"referral_id": SECOND_REFERRAL_ID, "partner_id": None, "withdrawn_at": "2026-03-02T04:00:00Z"},
    ),
    ReferralClosed: Example(
        SECOND_REFERRAL_ID,
        "An operator closed the referral.",
        {
            "referral_id": SECOND_REFERRAL_ID,
            "partner_id": PARTNER_ID,
            "reason": "duplicate of another request",
            "closed_at": "2026-03-05T10:00:00Z",
        },
    ),
    ReferralAssigned: Example(
        SECOND_REFERRAL_ID,
        "An operator chose the partner for an unmatched referral; matching offers it to them.",
        {"referral_id": SECOND_REFERRAL_ID, "partner_id": "gulf-bridge-law", "assigned_at": "2026-03-06T02:00:00Z"},
    ),
}

DIRECTORY_EXAMPLES: dict[Payload, Example] = {
    PartnerUpserted: Example(
        PARTNER_ID,
        "A partner was created, changed or deactivated in the directory; the latest record per partner counts.",
        {
            "partner_id": PARTNER_ID,
            "name": "LexBridge Legal (Hong Kong)",
            "categories": [
                {"category": "legal", "specialties": ["company formation", "distribution contracts"]},
                {"category": "regulatory_compliance", "specialties": ["free zones"]},
            ],
            "markets": ["AE", "SA", "MIDDLE_EAST"],
            "sectors": [],
            "languages": ["en", "zh-Hant", "zh-Hans", "ar"],
            "capacity": 12,
            "response_window_hours": 48,
            "offer_strategy": "sequential",
            "parallel_offers": 1,
            "active": True,
            "contact_email": "referrals@lexbridge-legal.example.hk",
            "delivery_email": "intake@lexbridge-legal.example.hk",
            "webhook_url": "https://crm.lexbridge-legal.example.hk/hooks/goglobal",
            "webhook_secret_generation": 2,
            "previous_secret_valid_until": "2026-03-03T00:00:00Z",
            "version": 7,
            "updated_at": "2026-03-02T00:00:00Z",
        },
        source="/goglobal/intake/partners",
    ),
    EnterpriseUpserted: Example(
        ENTERPRISE_ID,
        "An enterprise registered, or changed its profile or its consent to share contact details.",
        {
            "enterprise_id": ENTERPRISE_ID,
            "legal_name_zh": "深圳光明太阳能科技有限公司",
            "legal_name_en": "Shenzhen Bright Solar Technology Co., Ltd.",
            "sector": "C27",
            "size_band": "medium",
            "hq_province": "Guangdong",
            "hq_city": "Shenzhen",
            "contact": ENTERPRISE_CONTACT,
            "share_contact_with_accepted_partners": True,
            "receive_email": True,
            "preferred_languages": ["zh-Hans", "en"],
            "version": 1,
            "updated_at": "2026-03-01T08:00:00Z",
        },
    ),
}

API_KEY_EXAMPLES: dict[Payload, Example] = {
    ApiKeyRevoked: Example(
        "0123456789abcdef",
        "An API key was revoked (`DELETE /v1/api-keys/{key_id}`); every intake replica forgets its cached "
        "verification of that key at once.",
        {"key_id": "0123456789abcdef", "revoked_at": "2026-03-02T09:00:00Z"},
        source="/goglobal/intake/api-keys",
    ),
}

NOTIFICATION_EXAMPLES: dict[Payload, Example] = {
    NotificationCreated: Example(
        PARTNER_ID,
        "An inbox item was created for a partner, an enterprise or the operators.",
        {
            "notification_id": "18a3f2c4b5d6e7f8aa11bb22cc33dd44",
            "recipient_type": "partner",
            "recipient_id": PARTNER_ID,
            "referral_id": REFERRAL_ID,
            "kind": "hk.goglobal.partner.referral_offered.v1",
            "title": "New referral: legal in AE, SA",
            "body": "A medium-sized manufacturer (C27) from Guangdong needs legal services in AE, SA. "
            "Please answer by 2026-03-04 01:15 UTC.",
            "created_at": "2026-03-02T01:15:03Z",
        },
    ),
    NotificationDelivered: Example(
        PARTNER_ID,
        "A webhook (2xx answer) or an e-mail was delivered.",
        {
            "delivery_id": "18a3f2c4b5d6e7f8ee55ff6600771188",
            "channel": "webhook",
            "recipient_type": "partner",
            "recipient_id": PARTNER_ID,
            "event_id": "0d5b6c1e-3f0a-4c55-9a8e-2b7f4c1d9e60",
            "delivered_type": "hk.goglobal.partner.referral_offered.v1",
            "referral_id": REFERRAL_ID,
            "target": "https://crm.lexbridge-legal.example.hk/hooks/goglobal",
            "attempts": [ATTEMPT_OK],
            "at": "2026-03-02T01:15:03Z",
        },
    ),
    NotificationFailed: Example(
        PARTNER_ID,
        "A delivery attempt failed; `final` when no retry is left (schedule exhausted, a 4xx, endpoint disabled).",
        {
            "delivery_id": "18a3f2c4b5d6e7f8ee55ff6600771188",
            "channel": "webhook",
            "recipient_type": "partner",
            "recipient_id": PARTNER_ID,
            "event_id": "0d5b6c1e-3f0a-4c55-9a8e-2b7f4c1d9e60",
            "delivered_type": "hk.goglobal.partner.referral_offered.v1",
            "referral_id": REFERRAL_ID,
            "target": "https://crm.lexbridge-legal.example.hk/hooks/goglobal",
            "attempts": [ATTEMPT_503],
            "at": "2026-03-02T01:15:03Z",
            "final": False,
            "next_attempt_at": "2026-03-02T01:15:08Z",
        },
        time="2026-03-02T01:15:03Z",
    ),
    EndpointDisabled: Example(
        PARTNER_ID,
        "A partner's webhook endpoint was disabled: it answered 410 Gone, or failed continuously for too long.",
        {
            "partner_id": PARTNER_ID,
            "url": "https://crm.lexbridge-legal.example.hk/hooks/goglobal",
            "reason": "failing continuously since 2026-03-02T01:15:03Z (5 days)",
            "disabled_at": "2026-03-07T01:15:03Z",
        },
    ),
    RedeliveryRequested: Example(
        PARTNER_ID,
        "A partner or an operator asked to deliver given deliveries again, or every failed one since a time.",
        {
            "request_id": "18a3f2c4b5d6e7f8123456789abcdef0",
            "delivery_ids": [],
            "partner_id": PARTNER_ID,
            "failed_since": "2026-03-02T00:00:00Z",
            "requested_by": "partner:lexbridge-legal",
            "requested_at": "2026-03-07T09:00:00Z",
        },
    ),
}

PARTNER_EXAMPLES: dict[Payload, Example] = {
    ReferralOfferedToPartner: Example(
        REFERRAL_ID,
        "The referral is offered to you: the need and an anonymous profile of the enterprise (no names, no "
        "contact). Accept or decline by `respond_by`.",
        {
            "partner_id": PARTNER_ID,
            "referral_id": REFERRAL_ID,
            "need": NEED,
            "enterprise": {
                "sector": "C27",
                "size_band": "medium",
                "hq_province": "Guangdong",
                "preferred_languages": ["zh-Hans", "en"],
            },
            "offered_at": "2026-03-02T01:15:02Z",
            "respond_by": "2026-03-04T01:15:02Z",
            "round": 1,
        },
    ),
    OfferWithdrawnFromPartner: Example(
        REFERRAL_ID,
        "Your open offer was taken back: another partner accepted first, the enterprise withdrew the need, or "
        "an operator closed the referral.",
        {
            "partner_id": PARTNER_ID,
            "referral_id": REFERRAL_ID,
            "reason": "accepted_elsewhere",
            "withdrawn_at": "2026-03-02T06:40:01Z",
        },
    ),
    OfferExpiredForPartner: Example(
        REFERRAL_ID,
        "You did not answer the offer before `respond_by`; it went to the next candidate.",
        {
            "partner_id": PARTNER_ID,
            "referral_id": REFERRAL_ID,
            "offered_at": "2026-03-02T01:15:02Z",
            "expired_at": "2026-03-04T01:15:02Z",
        },
    ),
    ReferralAcceptedByPartner: Example(
        REFERRAL_ID,
        "Confirms your acceptance and names the enterprise. `enterprise.contact` is present only if the "
        "enterprise consented to share its contact details with accepting partners; otherwise it is null.",
        {
            "partner_id": PARTNER_ID,
            "referral_id": REFERRAL_ID,
            "accepted_at": "2026-03-02T06:40:00Z",
            "enterprise": {
                "enterprise_id": ENTERPRISE_ID,
                "legal_name_zh": "深圳光明太阳能科技有限公司",
                "legal_name_en": "Shenzhen Bright Solar Technology Co., Ltd.",
                "hq_province": "Guangdong",
                "hq_city": "Shenzhen",
                "contact": ENTERPRISE_CONTACT,
            },
        },
    ),
    ReferralWithdrawnByEnterprise: Example(
        REFERRAL_ID,
        "The enterprise withdrew a referral you had accepted.",
        {"partner_id": PARTNER_ID, "referral_id": REFERRAL_ID, "withdrawn_at": "2026-03-09T05:00:00Z"},
    ),
    ReferralClosedByOperator: Example(
        REFERRAL_ID,
        "An operator closed a referral you had accepted, with the reason.",
        {
            "partner_id": PARTNER_ID,
            "referral_id": REFERRAL_ID,
            "reason": "the enterprise asked the task force to stop",
            "closed_at": "2026-03-09T05:00:00Z",
        },
    ),
    ReferralRatedByEnterprise: Example(
        REFERRAL_ID,
        "The enterprise rated your work on a referral you completed.",
        {
            "partner_id": PARTNER_ID,
            "referral_id": REFERRAL_ID,
            "score": 5,
            "comment": "quick and clear",
            "rated_at": "2026-04-22T08:00:00Z",
        },
    ),
}

EXAMPLES: dict[Payload, Example] = {
    **REFERRAL_EXAMPLES,
    **DIRECTORY_EXAMPLES,
    **API_KEY_EXAMPLES,
    **NOTIFICATION_EXAMPLES,
    **PARTNER_EXAMPLES,
}

TOPICS: tuple[Topic, ...] = (
    Topic(
        "referrals",
        "goglobal.referrals",
        "Referral lifecycle",
        "the referral id",
        "Every step of every referral, from submission to rating, and what intake recorded for each partner "
        "concerned (the `hk.goglobal.partner.*` events, forwarded by notifications). Internal: read by the "
        "services only.",
        (*REFERRAL_PAYLOADS, *PARTNER_PAYLOADS),
    ),
    Topic(
        "partners",
        "goglobal.partners",
        "Partner directory",
        "the partner id",
        "The directory's current view of each partner. Compacted: the latest record per partner is kept.",
        (PartnerUpserted,),
        compacted=True,
    ),
    Topic(
        "enterprises",
        "goglobal.enterprises",
        "Enterprise profiles",
        "the enterprise id",
        "Enterprise profiles and their consent to share contact details. Internal.",
        (EnterpriseUpserted,),
    ),
    Topic(
        "apiKeys",
        "goglobal.api-keys",
        "API key revocations",
        "the key id",
        "Revoked API keys, so that every intake replica stops trusting its cached verification of a key at once "
        "(the cache keeps a verification for at most 5 s anyway). Read from the end by every replica, so it is "
        "kept for one day only (`retention.ms=86400000`). Internal.",
        API_KEY_PAYLOADS,
    ),
    Topic(
        "notifications",
        "goglobal.notifications",
        "Notifications and deliveries",
        "the recipient id (for a partner: the partner id)",
        "Inbox items, webhook and e-mail delivery outcomes, disabled endpoints, and redelivery requests. Internal.",
        NOTIFICATION_PAYLOADS,
    ),
    Topic(
        "partner",
        "goglobal.partner.{partnerId}",
        "One partner's own topic",
        "the referral id",
        "Everything one partner organisation receives. Only that partner (principal `User:partner-<id>`) may "
        "read it, with consumer groups named `partner-<id>.<app>`. Order holds per referral.",
        PARTNER_PAYLOADS,
    ),
)

MATCHING_SENDS: tuple[Payload, ...] = (
    ReferralMatched,
    ReferralUnmatched,
    ReferralOffered,
    ReferralExpired,
    ReferralOfferWithdrawn,
)
INTAKE_SENDS = tuple(cls for cls in REFERRAL_PAYLOADS if cls not in MATCHING_SENDS)
NOTIFICATION_COMMANDS: tuple[Payload, ...] = (RedeliveryRequested,)
NOTIFICATION_OUTCOMES = tuple(cls for cls in NOTIFICATION_PAYLOADS if cls not in NOTIFICATION_COMMANDS)
SOURCES = {"intake": "/goglobal/intake", "matching": "/goglobal/matching", "notifications": "/goglobal/notifications"}
PARTNER_GROUP_PATTERN = r"^partner-[a-z0-9][a-z0-9-]{1,62}\..+$"

FLOWS: tuple[Flow, ...] = (
    Flow(
        "intake",
        "send",
        "referrals",
        (*INTAKE_SENDS, *PARTNER_PAYLOADS),
        "Steps taken through the API, and what each partner is told of every change intake records (an offer "
        "only once intake holds it), relayed from intake's outbox.",
    ),
    Flow("intake", "send", "partners", (PartnerUpserted,), "Directory changes, relayed from intake's outbox."),
    Flow("intake", "send", "enterprises", (EnterpriseUpserted,), "Enterprise registrations and profile changes."),
    Flow("intake", "send", "apiKeys", API_KEY_PAYLOADS, "Key revocations, relayed from the API keys' outbox."),
    Flow(
        "intake",
        "receive",
        "apiKeys",
        API_KEY_PAYLOADS,
        "Every replica reads every revocation (no group), from the end of the topic at its start, and evicts the "
        "key from its cache of verified keys.",
    ),
    Flow("intake", "send", "notifications", NOTIFICATION_COMMANDS, "Redeliveries asked for through the API."),
    Flow("intake", "receive", "referrals", MATCHING_SENDS, "Follows matching's decisions.", "goglobal-intake"),
    Flow("intake", "receive", "notifications", NOTIFICATION_OUTCOMES, "Builds the inbox and delivery log it serves."),
    Flow("matching", "send", "referrals", MATCHING_SENDS, "Rankings, offers, expiries, withdrawn offers."),
    Flow("matching", "receive", "referrals", REFERRAL_PAYLOADS, "Drives the offer plans.", "goglobal-matching"),
    Flow("matching", "receive", "partners", (PartnerUpserted,), "Every replica reads the whole directory (no group)."),
    Flow(
        "notifications",
        "receive",
        "referrals",
        (*REFERRAL_PAYLOADS, *PARTNER_PAYLOADS),
        "Forwards intake's partner events to each partner; e-mails enterprises about their referrals.",
        "goglobal-notifications",
    ),
    Flow("notifications", "receive", "partners", (PartnerUpserted,), "Where and how to reach each partner."),
    Flow("notifications", "receive", "enterprises", (EnterpriseUpserted,), "Where and whether to e-mail enterprises."),
    Flow("notifications", "receive", "notifications", NOTIFICATION_COMMANDS, "Redelivers on request."),
    Flow("notifications", "send", "notifications", NOTIFICATION_OUTCOMES, "Inbox items and delivery outcomes."),
    Flow(
        "notifications",
        "send",
        "partner",
        PARTNER_PAYLOADS,
        "Forwards each partner event intake wrote, unchanged (same id), to that partner's topic.",
    ),
    Flow("partner", "receive", "partner", PARTNER_PAYLOADS, "A partner's own consumer.", "partner-<id>.<app>"),
)

DEAD_LETTER_HEADERS: dict[str, tuple[str, Json]] = {
    "dlq_original_topic": ("topic the record was read from", {"type": "string"}),
    "dlq_original_partition": ("its partition, in decimal", {"type": "string", "pattern": "^[0-9]+$"}),
    "dlq_original_offset": ("its offset, in decimal", {"type": "string", "pattern": "^[0-9]+$"}),
    "dlq_error_class": ("class of the error that refused it", {"type": "string"}),
    "dlq_error_message": ("what was wrong", {"type": "string"}),
    "dlq_attempts": ("how many times it was tried, in decimal", {"type": "string", "pattern": "^[0-9]+$"}),
}


def example_payload(cls: Payload) -> Json:
    """The example of `cls`, validated by the model and serialised as it travels (defaults filled in)."""
    example = EXAMPLES.get(cls)
    if example is None:
        raise LookupError(f"{cls.__name__} ({cls.event_type}) has no example: add one to EXAMPLES")
    dumped: Json = cls.model_validate(example.data).model_dump(mode="json")
    return dumped


def _open(schema: Any) -> Any:
    """Drops `additionalProperties: false` everywhere: consumers must ignore unknown fields."""
    if isinstance(schema, dict):
        return {k: _open(v) for k, v in schema.items() if not (k == "additionalProperties" and v is False)}
    if isinstance(schema, list):
        return [_open(item) for item in schema]
    return schema


def event_schema(cls: Payload) -> Json:
    """The standalone JSON Schema of one event type (its nested models under `$defs`)."""
    generated = _open(cls.model_json_schema(mode="serialization"))
    head: Json = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID_BASE + cls.event_type,
        "title": generated.pop("title", cls.__name__),
        "x-cloudevents-type": cls.event_type,
    }
    if "description" in generated:
        head["description"] = generated.pop("description")
    defs = generated.pop("$defs", None)
    body: Json = {**head, **generated, "examples": [example_payload(cls)]}
    if defs:
        body["$defs"] = dict(sorted(defs.items()))
    return body


def component_schemas() -> tuple[Json, dict[Payload, Json]]:
    """All payload schemas as AsyncAPI components, and the `$ref` of each event type's payload."""
    refs, top = models_json_schema([(cls, "serialization") for cls in PAYLOADS.values()], ref_template=COMPONENT_REF)
    schemas: Json = _open(top.get("$defs", {}))
    for cls in PAYLOADS.values():
        name = refs[(cls, "serialization")]["$ref"].rsplit("/", 1)[-1]
        schemas[name] = {**schemas[name], "x-cloudevents-type": cls.event_type}
    payload_refs = {cls: dict(refs[(cls, "serialization")]) for cls in PAYLOADS.values()}
    return dict(sorted(schemas.items())), payload_refs


def headers_schema(event_type: str, key: str) -> Json:
    return {
        "type": "object",
        "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_subject", "ce_time", "content-type"],
        "properties": {
            "ce_specversion": {"type": "string", "const": "1.0"},
            "ce_id": {"type": "string", "minLength": 1, "description": "unique per event: dedupe on it"},
            "ce_type": {"type": "string", "const": event_type},
            "ce_source": {"type": "string", "format": "uri-reference", "description": "the producing service"},
            "ce_subject": {"type": "string", "description": f"equals the record key: {key}"},
            "ce_time": {"type": "string", "format": "date-time", "description": "when the event happened"},
            "content-type": {"type": "string", "const": CONTENT_TYPE},
        },
    }


def _sender(cls: Payload) -> str:
    """The service that writes `cls` (its `ce_source`): the first sending flow in FLOWS. A later one forwards the
    same event unchanged (notifications, the partner events intake wrote)."""
    senders = [flow.service for flow in FLOWS if flow.action == "send" and cls in flow.payloads]
    if not senders:
        raise LookupError(f"{cls.event_type} needs a sending flow in FLOWS")
    return senders[0]


def example_headers(cls: Payload, example: Example, payload: Json) -> Json:
    """Deterministic header values: a name-based UUID, and the example's time."""
    times = [value for name, value in payload.items() if (name == "at" or name.endswith("_at")) and value]
    if not (example.time or times):
        raise LookupError(f"the example of {cls.event_type} needs a `time`: its payload has no `*_at` field")
    source = SOURCES[_sender(cls)]
    return {
        "ce_specversion": "1.0",
        "ce_id": str(uuid.uuid5(uuid.NAMESPACE_URL, SCHEMA_ID_BASE + cls.event_type)),
        "ce_type": cls.event_type,
        "ce_source": example.source or source,
        "ce_subject": example.key,
        "ce_time": example.time or times[-1],
        "content-type": CONTENT_TYPE,
    }


def message(cls: Payload, topic: Topic, payload_ref: Json) -> Json:
    payload = example_payload(cls)
    example = EXAMPLES[cls]
    return {
        "name": cls.event_type,
        "title": cls.__name__,
        "summary": example.when,
        "contentType": CONTENT_TYPE,
        "headers": headers_schema(cls.event_type, topic.key),
        "payload": payload_ref,
        "bindings": {
            "kafka": {"key": {"type": "string", "description": topic.key}, "bindingVersion": KAFKA_BINDING_VERSION}
        },
        "examples": [
            {
                "name": cls.__name__,
                "summary": f"record key {example.key}",
                "headers": example_headers(cls, example, payload),
                "payload": payload,
            }
        ],
    }


def dead_letter_message() -> Json:
    properties: Json = {name: {**schema, "description": text} for name, (text, schema) in DEAD_LETTER_HEADERS.items()}
    return {
        "name": "dead_letter",
        "title": "Dead letter",
        "summary": "A record a consumer refused: original key, value and headers, plus why.",
        "headers": {
            "type": "object",
            "required": list(DEAD_LETTER_HEADERS),
            "properties": properties,
            "description": "the original record's headers (ce_*, content-type) are kept beside these",
        },
        "payload": {"description": "the original record's value, byte for byte"},
        "bindings": {
            "kafka": {"key": {"description": "the original record's key"}, "bindingVersion": KAFKA_BINDING_VERSION}
        },
    }


def channel(topic: Topic) -> Json:
    body: Json = {
        "address": topic.address,
        "title": topic.title,
        "description": f"{topic.description} Key and `ce_subject`: {topic.key}.",
        "messages": {cls.event_type: {"$ref": f"#/components/messages/{cls.event_type}"} for cls in topic.payloads},
    }
    if "{partnerId}" in topic.address:
        body["parameters"] = {
            "partnerId": {
                "description": "the partner's id: lower-case letters, digits and '-' (`^[a-z0-9][a-z0-9-]{1,62}$`)",
                "examples": [PARTNER_ID],
            }
        }
    kafka: Json = {"bindingVersion": KAFKA_BINDING_VERSION}
    if topic.compacted:
        kafka["topicConfiguration"] = {"cleanup.policy": ["compact"]}
    body["bindings"] = {"kafka": kafka}
    return body


def dead_letter_channel() -> Json:
    return {
        "address": "{topic}.dlq",
        "title": "Dead letters",
        "description": "Records a service could not use (not a CloudEvent, wrong content type, unknown type, "
        "invalid payload, a transition the state machine refuses), for operators to inspect and replay.",
        "parameters": {
            "topic": {
                "description": "the topic the record was read from",
                "enum": [topic.address for topic in TOPICS if "{" not in topic.address],
            }
        },
        "messages": {"dead_letter": {"$ref": "#/components/messages/dead_letter"}},
    }


def channels() -> Json:
    found: Json = {topic.channel: channel(topic) for topic in TOPICS}
    found["deadLetters"] = dead_letter_channel()
    return found


def operation(flow: Flow) -> Json:
    refs = [{"$ref": f"#/channels/{flow.channel}/messages/{cls.event_type}"} for cls in flow.payloads]
    body: Json = {
        "action": flow.action,
        "channel": {"$ref": f"#/channels/{flow.channel}"},
        "summary": flow.summary,
        "messages": refs,
    }
    if flow.group == "partner-<id>.<app>":
        group: Json = {"type": "string", "pattern": PARTNER_GROUP_PATTERN, "description": "partner-<id>.<app>"}
        body["bindings"] = {"kafka": {"groupId": group, "bindingVersion": KAFKA_BINDING_VERSION}}
    elif flow.group:
        group = {"type": "string", "const": flow.group, "description": "prefixed with GOGLOBAL_TOPIC_PREFIX"}
        body["bindings"] = {"kafka": {"groupId": group, "bindingVersion": KAFKA_BINDING_VERSION}}
    return body


def operations() -> Json:
    found: Json = {f"{flow.service}.{flow.action}.{flow.channel}": operation(flow) for flow in FLOWS}
    consumers = sorted({flow.service for flow in FLOWS if flow.action == "receive" and flow.service in SOURCES})
    for service in consumers:
        found[f"{service}.send.deadLetters"] = {
            "action": "send",
            "channel": {"$ref": "#/channels/deadLetters"},
            "summary": f"{service} dead-letters the records it cannot use.",
            "messages": [{"$ref": "#/channels/deadLetters/messages/dead_letter"}],
        }
    return found


def _topic_of(cls: Payload) -> Topic:
    """The topic whose key describes `cls`'s records; a payload on several topics must be keyed alike on each
    (partner events: the referral id, on `goglobal.referrals` and on the partner's own topic)."""
    topics = [topic for topic in TOPICS if cls in topic.payloads]
    if not topics or len({topic.key for topic in topics}) != 1:
        raise LookupError(f"{cls.event_type} must be on at least one topic in TOPICS, with one key on all")
    return topics[0]


def messages(payload_refs: dict[Payload, Json]) -> Json:
    found: Json = {cls.event_type: message(cls, _topic_of(cls), payload_refs[cls]) for cls in PAYLOADS.values()}
    found["dead_letter"] = dead_letter_message()
    return dict(sorted(found.items()))


def servers() -> Json:
    return {
        "production": {
            "host": "kafka.goglobal.example:9094",
            "protocol": "kafka-secure",
            "title": "Production (placeholder)",
            "description": "The operators give each partner the real bootstrap servers and a SASL/SCRAM user "
            "`partner-<id>` (Kafka principal `User:partner-<id>`), over TLS.",
            "security": [{"$ref": "#/components/securitySchemes/partnerScram"}],
        },
        "local": {
            "host": "127.0.0.1:9092",
            "protocol": "kafka",
            "title": "Local development",
            "description": "`make run` / `make infra-up`: one KRaft broker, no authentication.",
        },
    }


def asyncapi_document() -> Json:
    schemas, payload_refs = component_schemas()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "GoGlobal Referral Network events",
            "version": DOCUMENT_VERSION,
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": servers(),
        "channels": channels(),
        "operations": operations(),
        "components": {
            "schemas": schemas,
            "messages": messages(payload_refs),
            "securitySchemes": {
                "partnerScram": {
                    "type": "scramSha512",
                    "description": "user `partner-<id>`; credentials from the operators",
                }
            },
        },
    }


class _Dumper(yaml.SafeDumper):
    """Never writes anchors/aliases; multi-line strings as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(document: Json) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def to_json(document: Json) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """Every generated file, by path relative to the output directory."""
    files = {ASYNCAPI_FILE: to_yaml(asyncapi_document())}
    for event_type in sorted(PAYLOADS):
        files[f"{SCHEMA_DIR}/{event_type}.json"] = to_json(event_schema(PAYLOADS[event_type]))
    return files


def stale_schemas(out: Path, expected: Iterable[str]) -> list[str]:
    """Schema files on disk for event types no longer in the contract."""
    present = {f"{SCHEMA_DIR}/{path.name}" for path in (out / SCHEMA_DIR).glob("*.json")}
    return sorted(present - set(expected))


def differences(out: Path) -> list[str]:
    """Paths (relative to `out`) that are missing, differ from what the code generates, or are stale."""
    files = render()
    changed = [
        path for path, text in files.items() if not (out / path).is_file() or (out / path).read_text("utf-8") != text
    ]
    return sorted(changed + stale_schemas(out, files))


def write(out: Path) -> list[str]:
    """Writes what differs, removes stale schemas; returns the paths it touched."""
    touched = differences(out)
    files = render()
    for path in touched:
        target = out / path
        if path in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[path], encoding="utf-8")
        else:
            target.unlink()
    return touched


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.asyncapi", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs"), help="output directory (default: docs)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    args = parser.parse_args(argv)
    if args.check:
        drift = differences(args.out)
        for path in drift:
            print(f"differs from the contract: {args.out / path}")
        if drift:
            print("run: python -m tools.asyncapi --out docs")
        return 1 if drift else 0
    for path in write(args.out):
        print(f"{'wrote' if (args.out / path).exists() else 'removed'} {args.out / path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

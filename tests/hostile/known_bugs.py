"""Product bugs the hostile tests found, in one place.

Each bug has an explicit regression test (in `test_regressions.py`, `test_kafka_fuzz.py` or `test_webhook_targets.py`)
decorated with `xfail_until_fixed(BUG)`: a strict xfail while `fixed` is False. The property-based runs (Schemathesis,
the Kafka fuzzer) tolerate exactly the open bugs listed here, and nothing else.

When a bug is fixed, its regression test XPASSes (strict: the run fails). Set `fixed=True` on the bug below: the
regression test then runs as an ordinary test, and the fuzzers stop tolerating the bug.

All 18 bugs below were fixed on 2026-11-26; each `where` names the place as it was when the bug was found.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

_Test = TypeVar("_Test", bound=Callable[..., Any])


@dataclass(frozen=True)
class Bug:
    id: str
    summary: str
    where: str  # file:line of the code (or the missing declaration) to change
    fixed: bool = False

    @property
    def reason(self) -> str:
        return f"[{self.id}] {self.summary} ({self.where}); once fixed, set fixed=True in tests/hostile/known_bugs.py"

    @property
    def marks(self) -> list[pytest.MarkDecorator]:
        """For `pytest.param(..., marks=BUG.marks)`: the strict xfail while the bug is open."""
        return [] if self.fixed else [pytest.mark.xfail(reason=self.reason, strict=True)]


def xfail_until_fixed(bug: Bug) -> Callable[[_Test], _Test]:
    """`pytest.mark.xfail(reason=..., strict=True)` while the bug is open; nothing once it is fixed."""

    def mark(test: _Test) -> _Test:
        if bug.fixed:
            return test
        marked: _Test = pytest.mark.xfail(reason=bug.reason, strict=True)(test)
        return marked

    return mark


# -- the intake OpenAPI document does not describe what the API answers ---------------------------------------------

PROBLEM_MEDIA_TYPE = Bug(
    "problem-media-type",
    "every error is served as application/problem+json, but the OpenAPI documents each error response "
    "(404, 409, 422, ...) as application/json",
    "services/intake/src/intake/app.py:79 _openapi (each error response's `content`); "
    "shared/src/goglobal_shared/problems.py:52",
    fixed=True,
)
UNDOCUMENTED_401 = Bug(
    "undocumented-401",
    "a missing, unknown or revoked API key answers 401, which no operation documents",
    "services/intake/src/intake/api/deps.py:31 get_principal",
    fixed=True,
)
UNDOCUMENTED_403 = Bug(
    "undocumented-403",
    "a key of the wrong role answers 403, which no operation documents",
    "services/intake/src/intake/api/deps.py:52 require (and deliveries.py _partner_or_operator)",
    fixed=True,
)
VALIDATION_422_SCHEMA = Bug(
    "validation-422-schema",
    "422 is documented as FastAPI's HTTPValidationError ({detail: [{loc, msg, type}]}) on every operation but "
    "POST /v1/service-requests and PATCH /v1/enterprises/me, but the body is always an RFC 9457 problem "
    "({type, title, status, detail: <string>, errors: [{field, message, type}]}), e.g. POST /v1/api-keys {'name': ''}",
    "shared/src/goglobal_shared/problems.py:68 on_validation, vs the generated 422 "
    "(services/intake/src/intake/app.py:79 _openapi)",
    fixed=True,
)
PUT_PARTNER_201 = Bug(
    "put-partner-201",
    "PUT /v1/partners/{partner_id} answers 201 when it creates the partner; only 200 is documented",
    "services/intake/src/intake/api/routes/partners.py:148 replace",
    fixed=True,
)
UNDOCUMENTED_413 = Bug(
    "undocumented-413",
    "a request body over GOGLOBAL_MAX_BODY_BYTES answers 413 on every POST/PUT/PATCH; no operation documents it",
    "services/intake/src/intake/api/middleware.py:80",
    fixed=True,
)
IDEMPOTENCY_KEY_400 = Bug(
    "idempotency-key-400",
    "Idempotency-Key is documented as any string of 1-255 characters, but anything outside visible ASCII "
    "(e.g. 'a b') is refused with a 400 that no operation documents; the header schema lacks the pattern "
    r"^[\x21-\x7e]{1,255}$",
    "services/intake/src/intake/app.py:89 (header schema) vs services/intake/src/intake/api/middleware.py:17,91",
    fixed=True,
)
IMPORT_415 = Bug(
    "import-415",
    "POST /v1/partners/import answers 415 for a body it cannot recognise (e.g. text/plain); 415 is not documented",
    "services/intake/src/intake/api/routes/partners.py:192",
    fixed=True,
)
READYZ_503 = Bug(
    "readyz-503",
    "GET /readyz answers 503 (with the failing checks) when a dependency is down; only 200 is documented",
    "shared/src/goglobal_shared/health.py:36",
    fixed=True,
)
NON_UTF8_BODY_400 = Bug(
    "non-utf8-body-400",
    "a JSON body that is not UTF-8 (e.g. b'\\xff\\xfe{') answers an undocumented 400 'There was an error parsing the "
    "body' (type about:blank), while malformed UTF-8 JSON answers the documented 422 json_invalid",
    "FastAPI's body parsing, passed through by shared/src/goglobal_shared/problems.py:80 on_http",
    fixed=True,
)
UNDOCUMENTED_INPUT_RULES = Bug(
    "undocumented-input-rules",
    "market codes (ISO 3166-1 alpha-2 or a region), BCP 47 language tags, E.164 phones, 18-character USCCs and ISIC "
    "sectors are validated, but the request schemas document them as plain strings: requests the OpenAPI calls "
    "valid are refused with 422 (the fuzzer's positive examples of POST /v1/service-requests and POST /v1/enterprises "
    "almost all are)",
    "shared/src/goglobal_shared/domain/identifiers.py:60,82,97,108 (UnifiedSocialCreditCode, E164Phone, LanguageTag, "
    "MarketCode) and domain/sectors.py SectorCode: give each Annotated type its pattern/enum in the JSON schema",
    fixed=True,
)
PATCH_NULL_422 = Bug(
    "patch-null-422",
    "PATCH /v1/enterprises/me documents every field as nullable (anyOf [..., null]) but refuses null "
    "('cannot be null: omit it to leave it unchanged')",
    "shared/src/goglobal_shared/domain/enterprise.py:91 EnterpriseUpdate (fields typed `X | None`), refusal at :123",
    fixed=True,
)

OPENAPI_BUGS = (
    PROBLEM_MEDIA_TYPE,
    UNDOCUMENTED_401,
    UNDOCUMENTED_403,
    VALIDATION_422_SCHEMA,
    PUT_PARTNER_201,
    UNDOCUMENTED_413,
    IDEMPOTENCY_KEY_400,
    IMPORT_415,
    READYZ_503,
    NON_UTF8_BODY_400,
    UNDOCUMENTED_INPUT_RULES,
    PATCH_NULL_422,
)


# -- hostile Kafka records ------------------------------------------------------------------------------------------

NULL_HEADER_CRASH = Bug(
    "null-header-crash",
    "a record whose ce_type header has a null value (legal in Kafka) kills every EventConsumer: _type_of calls "
    "None.decode inside _dead_letter (after the dead letter is sent) and again in _attempt's except block, the loop "
    "dies and the process exits 70; the offset is never committed, so every restart dies again on the same record",
    "shared/src/goglobal_shared/consumer.py:198 _type_of (called at :140 and :193)",
    fixed=True,
)
COLLECTOR_NULL_HEADER = Bug(
    "collector-null-header",
    "intake's dead-letter collector cannot store a dead letter that has a header with a null value (None.decode in "
    "letter().text, base64.b64encode(None)); it retries forever, so that letter and every later one on the partition "
    "never reach GET /v1/dead-letters",
    "services/intake/src/intake/consumers/dead_letters.py:23 and :37",
    fixed=True,
)
PARTNER_EVENT_CRASH = Bug(
    "partner-event-crash",
    "a partner_upserted event that passes the event schema but not matching's Partner model (e.g. categories: [], "
    "markets: [], partner_id 'NOT VALID', name '', sectors ['zzz']) raises ValidationError outside the follower's "
    "try: the directory follower dies and matching exits 70; the partners topic is compacted and read from the start "
    "on every boot, so matching never comes back",
    "services/matching/src/matching/adapters/directory_follower.py:76 (partner_from_event, after the try of :65-75)",
    fixed=True,
)
OVERSIZE_DEAD_LETTER_CRASH = Bug(
    "oversize-dead-letter-crash",
    "a record close to the 1 MiB limit is accepted by the broker, but its dead-letter copy (the same bytes plus the "
    "dlq_* headers) exceeds the producer's max_request_size: MessageSizeTooLargeError kills matching's directory "
    "follower at once, and EventConsumers after 8 'transient' retries (~60 s of a stalled partition); the process "
    "exits 70 and dies again on the same record after every restart",
    "shared/src/goglobal_shared/dead_letters.py:37 send_to_dead_letters (no size guard), "
    "services/matching/src/matching/adapters/directory_follower.py:74, shared/src/goglobal_shared/consumer.py:138",
    fixed=True,
)
METRIC_LABEL_FROM_HEADER = Bug(
    "metric-label-from-header",
    "goglobal_events_consumed{type=...} takes its label from the record's ce_type header even when the type is "
    "unknown: every distinct junk ce_type a producer sends creates new time series (unbounded cardinality)",
    "shared/src/goglobal_shared/consumer.py:193 (and :140) via _type_of",
    fixed=True,
)


# -- webhook targets ------------------------------------------------------------------------------------------------

WHITESPACE_REWRITTEN = Bug(
    "webhook-url-whitespace-rewritten",
    "a webhook_url with CR/LF, a tab or a space is accepted (200/201) and silently rewritten by pydantic's HttpUrl "
    "('.../goglobal\\r\\nX-Injected: 1' is stored as '.../goglobalX-Injected:%201'): the 'whitespace or control "
    "characters' rule of webhook_url_problem runs on the already-normalised URL, so it never fires at intake",
    "services/intake/src/intake/api/routes/partners.py:36 checked() and :201 (import) check str(HttpUrl), not the "
    "submitted text; shared/src/goglobal_shared/domain/partner.py:52 DeliverySettings.webhook_url",
    fixed=True,
)

"""Who may do what on the intake API: every endpoint of its OpenAPI document, for every kind of caller, on the caller's
own object, another tenant's and one that does not exist, against intake + matching + notifications running as
real processes on the real broker and database.

The world (built once for the module):

* enterprise A (consents to share its contact) and enterprise B (does not);
* partner P1 (legal in AE and SA) gets A's legal referrals; partner P2 (banking in GB) gets B's, never A's;
* an inactive spare partner, which operators manage in the rows that change partners;
* A's request holds W_A (offered to P1, then withdrawn by A) and L_A (offered to P1, left open);
  B's request holds W_B (offered to P2, then withdrawn by B) and L_B (offered to P2, left open);
* a revoked spare API key for A, B, P1, P2 and the operator;
* the oldest item of P1's and of P2's inbox (an offer), looked up when a row first needs it;
* a third, probe enterprise whose referrals show that matching knows P1 and P2 before A and B submit.

Rows that change state target W_A / W_B. Being withdrawn, they are terminal: a party allowed to act gets 409
whatever the other rows did before, a party that may not see them gets 404 and a role that may never act gets 403.
Key revocations target the already revoked spare keys (revoking again answers 200 and changes nothing), and
partner changes target the spare partner, so every row's expectation holds in any order.
"""

import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import pytest
from pymongo import AsyncMongoClient

from intake.adapters.api_key_repository import ApiKeyRepository
from intake.auth.keys import Role
from tests import factories
from tests.integration.intake_helpers import assert_problem
from tests.support import Infra, Namespace, eventually
from tests.world import Enterprise, World, bearer, key_id, new_namespace, running_world

Who = Literal["anonymous", "A", "B", "P1", "P2", "operator"]
ROLES: tuple[Who, ...] = ("anonymous", "A", "B", "P1", "P2", "operator")

P1, P2, SPARE = "p1-gulf-legal", "p2-uk-treasury", "spare-logistics"
PARTNER_IDS: dict[Who, str] = {"P1": P1, "P2": P2}
P1_RECORD = factories.partner(P1, ["legal"], ["AE", "SA"])
P2_RECORD = factories.partner(P2, ["banking_and_fund_management"], ["GB"])
SPARE_RECORD = factories.partner(SPARE, ["logistics"], ["JP"], active=False)
LEGAL_NEED = {"service_category": "legal", "target_markets": ["AE", "SA"], "description": "Dubai subsidiary"}
TREASURY_NEED = {"service_category": "banking_and_fund_management", "target_markets": ["GB"], "description": "GBP"}
UNMATCHABLE_NEED = {"service_category": "marketing", "target_markets": ["JP"], "description": "nobody offers this"}
# Operational endpoints, unauthenticated by design; the docs routes (/docs, /redoc, /openapi.json) are not listed.
UNDOCUMENTED = {"/healthz", "/readyz", "/metrics"}


# -- the table ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # as in the OpenAPI document; its one `{param}` is filled with `target`
    role: Who
    target: str | None  # symbolic: "A.referral" (W_A), "B.request", "none.key" (an id that does not exist), ...
    status: int
    why: str
    body: str | None = None  # a name in BODIES

    @property
    def relation(self) -> str:
        if self.target is None:
            return "-"
        if self.target.startswith("none."):
            return "missing"
        return "own" if self.role in PARTIES[self.target] else "foreign"

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} {self.role} {self.relation}:{self.target or '-'} -> {self.status}"


# Whose object each target is: an enterprise owns its requests and referrals, a partner "owns" the referrals that
# were offered to it, and the spare partner belongs to nobody (operators manage it).
PARTIES: dict[str, set[str]] = {
    "A.enterprise": {"A"},
    "B.enterprise": {"B"},
    "A.request": {"A"},
    "B.request": {"B"},
    "A.referral": {"A", "P1"},
    "B.referral": {"B", "P2"},
    "P1.partner": {"P1"},
    "P2.partner": {"P2"},
    "spare.partner": set(),
    "A.key": {"A"},
    "B.key": {"B"},
    "P1.key": {"P1"},
    "P2.key": {"P2"},
    "operator.key": {"operator"},
    "P1.notification": {"P1"},  # the first item of P1's inbox (its offer of W_A or L_A)
    "P2.notification": {"P2"},
}


def rows(method: str, path: str, body: str | None, *cases: tuple[Who, str | None, int, str]) -> list[Row]:
    return [Row(method, path, role, target, status, why, body) for role, target, status, why in cases]


REF = "/v1/referrals/{referral_id}"
NO_KEY = "no key"
ENTERPRISE_ONLY = "enterprise keys only"
PARTNER_ONLY = "partner keys only"
OPERATOR_ONLY = "operator keys only"
ENT_OR_OP = "enterprise or operator keys only"
PARTNER_OR_OP = "partner or operator keys only"
FOREIGN_404 = "another tenant's: 404, never the object"
TERMINAL_409 = "may act, but W is withdrawn (terminal): 409"


def referral_reads(path: str) -> list[Row]:
    return rows(
        "GET",
        path,
        None,
        ("anonymous", "A.referral", 401, NO_KEY),
        ("A", "A.referral", 200, "its own"),
        ("A", "B.referral", 404, FOREIGN_404),
        ("B", "B.referral", 200, "its own"),
        ("B", "A.referral", 404, FOREIGN_404),
        ("P1", "A.referral", 200, "was offered to P1"),
        ("P1", "B.referral", 404, "never offered to P1"),
        ("P2", "B.referral", 200, "was offered to P2"),
        ("P2", "A.referral", 404, "never offered to P2"),
        ("operator", "A.referral", 200, "operators see everything"),
        ("operator", "B.referral", 200, "operators see everything"),
        ("operator", "none.referral", 404, "no such referral"),
    )


def partner_action(action: str, body: str | None) -> list[Row]:
    """accept / decline / start / complete: the partner the referral was offered to may try, and gets 409."""
    return rows(
        "POST",
        f"{REF}/{action}",
        body,
        ("anonymous", "A.referral", 401, NO_KEY),
        ("A", "A.referral", 403, PARTNER_ONLY + ", even on its own referral"),
        ("A", "B.referral", 403, PARTNER_ONLY + ": the role check comes before the lookup"),
        ("B", "B.referral", 403, PARTNER_ONLY),
        ("B", "A.referral", 403, PARTNER_ONLY),
        ("P1", "A.referral", 409, TERMINAL_409),
        ("P1", "B.referral", 404, "never offered to P1"),
        ("P1", "none.referral", 404, "no such referral"),
        ("P2", "B.referral", 409, TERMINAL_409),
        ("P2", "A.referral", 404, "never offered to P2"),
        ("operator", "A.referral", 403, PARTNER_ONLY),
    )


def enterprise_action(action: str, body: str | None) -> list[Row]:
    """rating / withdraw: the owning enterprise may try, and gets 409 (not completed; already withdrawn)."""
    return rows(
        "POST",
        f"{REF}/{action}",
        body,
        ("anonymous", "A.referral", 401, NO_KEY),
        ("A", "A.referral", 409, TERMINAL_409),
        ("A", "B.referral", 404, FOREIGN_404),
        ("A", "none.referral", 404, "no such referral"),
        ("B", "B.referral", 409, TERMINAL_409),
        ("B", "A.referral", 404, FOREIGN_404),
        ("P1", "A.referral", 403, ENTERPRISE_ONLY + ", even when offered to P1"),
        ("P2", "B.referral", 403, ENTERPRISE_ONLY),
        ("operator", "A.referral", 403, ENTERPRISE_ONLY),
    )


def operator_action(action: str, body: str) -> list[Row]:
    """close / assign: operators may act on any referral, and get 409 (withdrawn; not unmatched)."""
    return rows(
        "POST",
        f"{REF}/{action}",
        body,
        ("anonymous", "A.referral", 401, NO_KEY),
        ("A", "A.referral", 403, OPERATOR_ONLY + ", even on its own referral"),
        ("B", "B.referral", 403, OPERATOR_ONLY),
        ("P1", "A.referral", 403, OPERATOR_ONLY + ", even when offered to P1"),
        ("P2", "B.referral", 403, OPERATOR_ONLY),
        ("operator", "A.referral", 409, TERMINAL_409),
        ("operator", "B.referral", 409, TERMINAL_409),
        ("operator", "none.referral", 404, "no such referral"),
    )


def operator_only(method: str, path: str, body: str | None, target: str | None, ok: int, why: str) -> list[Row]:
    """An operator endpoint: every other role is refused before anything is looked up."""
    return rows(
        method,
        path,
        body,
        ("anonymous", target, 401, NO_KEY),
        ("A", target, 403, OPERATOR_ONLY),
        ("B", target, 403, OPERATOR_ONLY),
        ("P1", target, 403, OPERATOR_ONLY),
        ("P2", target, 403, OPERATOR_ONLY),
        ("operator", target, ok, why),
    )


TABLE: list[Row] = [
    # -- enterprises --------------------------------------------------------------------------------------------
    *rows(
        "POST",
        "/v1/enterprises",
        "new_enterprise",  # a fresh credit code on every call: 201 in any order
        ("anonymous", None, 201, "open registration"),
        ("A", None, 201, "open registration: a key is neither needed nor used"),
        ("B", None, 201, "open registration"),
        ("P1", None, 201, "open registration"),
        ("P2", None, 201, "open registration"),
        ("operator", None, 201, "open registration"),
    ),
    *rows(
        "GET",
        "/v1/enterprises/me",
        None,
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 200, "its own profile"),
        ("B", None, 200, "its own profile"),
        ("P1", None, 403, ENTERPRISE_ONLY),
        ("P2", None, 403, ENTERPRISE_ONLY),
        ("operator", None, 403, ENTERPRISE_ONLY + " (operators use /v1/enterprises/{id})"),
    ),
    *rows(
        "PATCH",
        "/v1/enterprises/me",
        "same_city",  # sets the city it already has: changes nothing
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 200, "its own profile"),
        ("B", None, 200, "its own profile"),
        ("P1", None, 403, ENTERPRISE_ONLY),
        ("P2", None, 403, ENTERPRISE_ONLY),
        ("operator", None, 403, ENTERPRISE_ONLY),
    ),
    *rows(
        "GET",
        "/v1/enterprises/{enterprise_id}",
        None,
        ("anonymous", "A.enterprise", 401, NO_KEY),
        ("A", "A.enterprise", 403, OPERATOR_ONLY + ", even for its own id"),
        ("A", "B.enterprise", 403, OPERATOR_ONLY),
        ("B", "A.enterprise", 403, OPERATOR_ONLY),
        ("P1", "A.enterprise", 403, OPERATOR_ONLY),
        ("P2", "B.enterprise", 403, OPERATOR_ONLY),
        ("operator", "A.enterprise", 200, "operators see everything"),
        ("operator", "none.enterprise", 404, "no such enterprise"),
    ),
    # -- service requests ---------------------------------------------------------------------------------------
    *rows(
        "POST",
        "/v1/service-requests",
        "unmatchable_request",  # a new request every time; nobody offers its need, so no partner is disturbed
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 201, "enterprises submit"),
        ("B", None, 201, "enterprises submit"),
        ("P1", None, 403, ENTERPRISE_ONLY),
        ("P2", None, 403, ENTERPRISE_ONLY),
        ("operator", None, 403, ENTERPRISE_ONLY),
    ),
    *rows(
        "GET",
        "/v1/service-requests",
        None,
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 200, "its own (checked in test_lists_hold_only_what_the_caller_may_see)"),
        ("B", None, 200, "its own"),
        ("P1", None, 403, ENT_OR_OP),
        ("P2", None, 403, ENT_OR_OP),
        ("operator", None, 200, "all"),
    ),
    *rows(
        "GET",
        "/v1/service-requests/{request_id}",
        None,
        ("anonymous", "A.request", 401, NO_KEY),
        ("A", "A.request", 200, "its own"),
        ("A", "B.request", 404, FOREIGN_404),
        ("A", "none.request", 404, "no such request"),
        ("B", "B.request", 200, "its own"),
        ("B", "A.request", 404, FOREIGN_404),
        ("P1", "A.request", 403, ENT_OR_OP + ", even though one of its referrals was offered to P1"),
        ("P2", "B.request", 403, ENT_OR_OP),
        ("operator", "A.request", 200, "operators see everything"),
        ("operator", "none.request", 404, "no such request"),
    ),
    # -- referrals ----------------------------------------------------------------------------------------------
    *rows(
        "GET",
        "/v1/referrals",
        None,
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 200, "its own (contents checked in test_lists_hold_only_what_the_caller_may_see)"),
        ("B", None, 200, "its own"),
        ("P1", None, 200, "those offered to P1"),
        ("P2", None, 200, "those offered to P2"),
        ("operator", None, 200, "all"),
    ),
    *referral_reads(REF),
    *referral_reads(f"{REF}/history"),
    *partner_action("accept", None),
    *partner_action("decline", "decline"),
    *partner_action("start", None),  # 409: P1 never accepted W_A
    *partner_action("complete", "completion"),
    *enterprise_action("rating", "rating"),  # 409: W_A was never completed
    *enterprise_action("withdraw", None),  # 409: W_A is withdrawn already
    *operator_action("close", "close"),
    *operator_action("assign", "assign_p1"),  # P1 is active, so the 409 comes from W_A not being unmatched
    # -- partners -----------------------------------------------------------------------------------------------
    *rows(
        "GET",
        "/v1/partners/me",
        None,
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 403, PARTNER_ONLY),
        ("B", None, 403, PARTNER_ONLY),
        ("P1", None, 200, "its own profile"),
        ("P2", None, 200, "its own profile"),
        ("operator", None, 403, PARTNER_ONLY + " (operators use /v1/partners/{id})"),
    ),
    *operator_only("POST", "/v1/partners", "p1_record", None, 409, "P1 exists: authorised, but nothing is created"),
    *operator_only("GET", "/v1/partners", None, None, 200, "the directory"),
    *operator_only("GET", "/v1/partners/{partner_id}", None, "spare.partner", 200, "any partner"),
    *rows(
        "GET",
        "/v1/partners/{partner_id}",
        None,
        ("P1", "P1.partner", 403, OPERATOR_ONLY + ", even its own id (it has /v1/partners/me)"),
        ("P2", "P1.partner", 403, OPERATOR_ONLY),
        ("operator", "none.partner", 404, "no such partner"),
    ),
    *operator_only("PUT", "/v1/partners/{partner_id}", "spare_profile", "spare.partner", 200, "replaced unchanged"),
    *rows(
        "PUT",
        "/v1/partners/{partner_id}",
        "spare_profile",
        ("P1", "P1.partner", 403, OPERATOR_ONLY + ", even on its own profile"),
        ("operator", "none.partner", 201, "a fresh id every call: PUT creates it (inactive)"),
    ),
    *operator_only("DELETE", "/v1/partners/{partner_id}", None, "spare.partner", 200, "spare is inactive already"),
    *rows(
        "DELETE",
        "/v1/partners/{partner_id}",
        None,
        ("P1", "P1.partner", 403, OPERATOR_ONLY + ", even on itself"),
        ("operator", "none.partner", 404, "no such partner"),
    ),
    *operator_only("POST", "/v1/partners/import", "empty_import", None, 200, "an empty file imports nothing"),
    *operator_only("POST", "/v1/partners/{partner_id}/api-keys", "key_name", "spare.partner", 201, "a new key"),
    *rows(
        "POST",
        "/v1/partners/{partner_id}/api-keys",
        "key_name",
        ("P1", "P1.partner", 403, OPERATOR_ONLY + ", even for itself"),
        ("operator", "none.partner", 404, "no such partner"),
    ),
    # -- a partner's webhook secret, delivery logs, inboxes --------------------------------------------------------
    *rows(
        "GET",
        "/v1/partners/me/webhook-secret",
        None,
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 403, PARTNER_ONLY),
        ("B", None, 403, PARTNER_ONLY),
        ("P1", None, 200, "its own secret"),
        ("P2", None, 200, "its own secret"),
        ("operator", None, 403, PARTNER_ONLY),
    ),
    *rows(
        "POST",
        "/v1/partners/me/webhook-secret/rotate",
        None,  # P1 and P2 have no webhook: a new secret changes nothing else, whenever it happens
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 403, PARTNER_ONLY),
        ("B", None, 403, PARTNER_ONLY),
        ("P1", None, 200, "its own secret"),
        ("P2", None, 200, "its own secret"),
        ("operator", None, 403, PARTNER_ONLY),
    ),
    *rows(
        "GET",
        "/v1/deliveries",
        None,
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 403, PARTNER_OR_OP),
        ("B", None, 403, PARTNER_OR_OP),
        ("P1", None, 200, "its own"),
        ("P2", None, 200, "its own"),
        ("operator", None, 200, "all"),
    ),
    *rows(
        "POST",
        "/v1/deliveries/redeliver",
        "redeliver_since",  # nothing has failed: the command is accepted and finds nothing to send
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 403, PARTNER_OR_OP),
        ("B", None, 403, PARTNER_OR_OP),
        ("P1", None, 202, "its own failed deliveries"),
        ("P2", None, 202, "its own failed deliveries"),
        ("operator", None, 202, "anyone's failed deliveries"),
    ),
    *rows(
        "POST",
        "/v1/deliveries/{delivery_id}/redeliver",
        None,
        ("anonymous", "none.delivery", 401, NO_KEY),
        ("A", "none.delivery", 403, PARTNER_OR_OP + ": the role check comes before the lookup"),
        ("B", "none.delivery", 403, PARTNER_OR_OP),
        ("P1", "none.delivery", 404, "no such delivery"),
        ("P2", "none.delivery", 404, "no such delivery"),
        ("operator", "none.delivery", 404, "no such delivery"),
    ),
    *rows(
        "GET",
        "/v1/inbox",
        None,
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 200, "its own inbox"),
        ("B", None, 200, "its own inbox"),
        ("P1", None, 200, "its own inbox"),
        ("P2", None, 200, "its own inbox"),
        ("operator", None, 200, "the operators' shared inbox"),
    ),
    *rows(
        "POST",
        "/v1/inbox/{notification_id}/read",
        None,  # marking a read notification read again changes nothing
        ("anonymous", "P1.notification", 401, NO_KEY),
        ("A", "P1.notification", 404, "a partner's notification: " + FOREIGN_404),
        ("B", "P2.notification", 404, "a partner's notification: " + FOREIGN_404),
        ("P1", "P1.notification", 200, "its own"),
        ("P1", "P2.notification", 404, FOREIGN_404),
        ("P2", "P2.notification", 200, "its own"),
        ("P2", "P1.notification", 404, FOREIGN_404),
        ("operator", "P1.notification", 404, "operators have their own inbox; a partner's item is not in it"),
        ("operator", "none.notification", 404, "no such notification"),
    ),
    # -- dead letters: operators only -----------------------------------------------------------------------------
    *rows(
        "GET",
        "/v1/dead-letters",
        None,
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 403, OPERATOR_ONLY),
        ("B", None, 403, OPERATOR_ONLY),
        ("P1", None, 403, OPERATOR_ONLY),
        ("P2", None, 403, OPERATOR_ONLY),
        ("operator", None, 200, "every dead letter"),
    ),
    *rows(
        "GET",
        "/v1/dead-letters/{letter_id}",
        None,
        ("anonymous", "none.letter", 401, NO_KEY),
        ("A", "none.letter", 403, OPERATOR_ONLY),
        ("B", "none.letter", 403, OPERATOR_ONLY),
        ("P1", "none.letter", 403, OPERATOR_ONLY),
        ("P2", "none.letter", 403, OPERATOR_ONLY),
        ("operator", "none.letter", 404, "no such dead letter"),
    ),
    *rows(
        "POST",
        "/v1/dead-letters/{letter_id}/replay",
        None,
        ("anonymous", "none.letter", 401, NO_KEY),
        ("A", "none.letter", 403, OPERATOR_ONLY),
        ("B", "none.letter", 403, OPERATOR_ONLY),
        ("P1", "none.letter", 403, OPERATOR_ONLY),
        ("P2", "none.letter", 403, OPERATOR_ONLY),
        ("operator", "none.letter", 404, "no such dead letter"),
    ),
    *rows(
        "POST",
        "/v1/dead-letters/replay",
        "replay_nothing",  # a filter no letter matches: accepted, nothing sent
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 403, OPERATOR_ONLY),
        ("B", None, 403, OPERATOR_ONLY),
        ("P1", None, 403, OPERATOR_ONLY),
        ("P2", None, 403, OPERATOR_ONLY),
        ("operator", None, 200, "replays what matches"),
    ),
    # -- API keys -----------------------------------------------------------------------------------------------
    *rows(
        "GET",
        "/v1/api-keys",
        None,
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 200, "its own keys (contents checked in test_intake_http.py)"),
        ("B", None, 200, "its own keys"),
        ("P1", None, 200, "its own keys"),
        ("P2", None, 200, "its own keys"),
        ("operator", None, 200, "its own keys"),
    ),
    *operator_only("POST", "/v1/api-keys/operators", "key_name", None, 201, "a new operator key"),
    *rows(
        "POST",
        "/v1/api-keys",
        "key_name",
        ("anonymous", None, 401, NO_KEY),
        ("A", None, 201, "another key of its own"),
        ("B", None, 201, "another key of its own"),
        ("P1", None, 201, "another key of its own"),
        ("P2", None, 201, "another key of its own"),
        ("operator", None, 201, "another key of its own"),
    ),
    *rows(
        "DELETE",
        "/v1/api-keys/{key_id}",
        None,  # every target is a spare key revoked while building the world: revoking again changes nothing
        ("anonymous", "A.key", 401, NO_KEY),
        ("A", "A.key", 200, "its own key"),
        ("A", "B.key", 404, FOREIGN_404),
        ("A", "P1.key", 404, "a partner's key: " + FOREIGN_404),
        ("B", "B.key", 200, "its own key"),
        ("B", "A.key", 404, FOREIGN_404),
        ("P1", "P1.key", 200, "its own key"),
        ("P1", "P2.key", 404, FOREIGN_404),
        ("P1", "A.key", 404, "an enterprise's key: " + FOREIGN_404),
        ("P2", "P2.key", 200, "its own key"),
        ("P2", "P1.key", 404, FOREIGN_404),
        ("operator", "operator.key", 200, "its own key"),
        ("operator", "A.key", 200, "operators may revoke any key"),
        ("operator", "P2.key", 200, "operators may revoke any key"),
        ("operator", "none.key", 404, "no such key"),
    ),
]


# -- the world ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tenants:
    """What the rows need on top of the shared system World: the callers' keys and the objects they target."""

    url: str
    keys: dict[Who, str]
    a: Enterprise
    b: Enterprise
    objects: dict[str, str]  # target name -> id
    open_referrals: dict[str, str]  # "A" -> L_A, "B" -> L_B
    revoked_key: str  # the plaintext of A's revoked spare key
    probe_referrals: set[str]  # a third enterprise's, made while waiting for matching to know the partners

    def auth(self, role: Who) -> dict[str, str]:
        return {} if role == "anonymous" else bearer(self.keys[role])

    async def resolve(self, http: httpx.AsyncClient, target: str) -> str:
        kind = target.removeprefix("none.")
        if kind == "partner":
            return f"nobody-{uuid.uuid4().hex[:12]}"
        if kind == "key":
            return uuid.uuid4().hex[:16]
        if kind != target:
            return uuid.uuid4().hex  # an id of the right shape that nothing has
        if kind.endswith(".notification") and target not in self.objects:
            self.objects[target] = await _first_notification(http, self.keys[PARTNER_OF[target]])
        return self.objects[target]


BODIES: dict[str, Callable[[Tenants], Any]] = {
    "new_enterprise": lambda w: factories.enterprise(),
    "same_city": lambda w: {"hq_city": "Shenzhen"},
    "unmatchable_request": lambda w: {"needs": [UNMATCHABLE_NEED]},
    "decline": lambda w: {"reason": "no_capacity"},
    "completion": lambda w: {"outcome": "engaged", "notes": "Entity formed"},
    "rating": lambda w: {"score": 5},
    "close": lambda w: {"reason": "duplicate of another request"},
    "assign_p1": lambda w: {"partner_id": P1},
    "p1_record": lambda w: P1_RECORD,
    "spare_profile": lambda w: {k: v for k, v in SPARE_RECORD.items() if k != "id"},
    "empty_import": lambda w: [],
    "key_name": lambda w: {"name": "crm"},
    "redeliver_since": lambda w: {"failed_since": "2026-01-01T00:00:00Z"},
    "replay_nothing": lambda w: {"topic": "no-such-topic"},
}


PARTNER_OF: dict[str, Who] = {"P1.notification": "P1", "P2.notification": "P2"}


async def _first_notification(http: httpx.AsyncClient, partner_key: str) -> str:
    """Notifications fills a partner's inbox from the offers, asynchronously; the first rows to need an item wait."""

    async def first() -> str | None:
        answer = await http.get("/v1/inbox", headers=bearer(partner_key))
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()
        return str(items[-1]["notification_id"]) if items else None

    return await eventually(first, "a notification in the partner's inbox")


async def _enterprise_spare_key(namespace: Namespace, enterprise_id: str) -> tuple[str, str]:
    """A second key for an enterprise (the API issues one, at registration), made the way the CLI makes keys."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(namespace.infra.mongodb_uri, tz_aware=True)
    try:
        keys = ApiKeyRepository(client[namespace.database("intake")]["api_keys"])
        issued = await keys.create(Role.ENTERPRISE, enterprise_id, "spare", datetime.now(UTC))
        return issued.key_id, issued.plaintext
    finally:
        await client.close()


async def _settled(http: httpx.AsyncClient, operator: str, referral_id: str) -> str:
    async def status() -> str | None:
        answer = await http.get(f"/v1/referrals/{referral_id}", headers=bearer(operator))
        assert answer.status_code == 200, answer.text
        current: str = answer.json()["status"]
        return current if current in {"offered", "unmatched"} else None

    return await eventually(status, f"referral {referral_id} to be offered or unmatched")


async def _wait_until_matching_knows(
    http: httpx.AsyncClient, operator: str, probe: Enterprise, needs: list[dict[str, Any]]
) -> set[str]:
    """Matching learns partners from partner.upserted events, and a need submitted before that goes unmatched.
    A throwaway enterprise submits each need until one is offered; returns every referral it made."""
    made: set[str] = set()
    for need in needs:

        async def offered(need: dict[str, Any] = need) -> bool:
            submitted = await http.post("/v1/service-requests", json={"needs": [need]}, headers=probe.auth)
            assert submitted.status_code == 201, submitted.text
            referral_id: str = submitted.json()["referrals"][0]["id"]
            made.add(referral_id)
            return await _settled(http, operator, referral_id) == "offered"

        await eventually(offered, f"matching to offer {need['service_category']}", deadline_s=60)
    return made


async def _wait_offered(http: httpx.AsyncClient, partner_key: str, referral_id: str) -> None:
    """Until it is offered, the partner must not even learn that the referral exists."""

    async def offered() -> bool:
        answer = await http.get(f"/v1/referrals/{referral_id}", headers=bearer(partner_key))
        if answer.status_code == 404:
            return False
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "offered", answer.text
        return True

    await eventually(offered, f"referral {referral_id} to be offered")


async def build_tenants(system: World) -> Tenants:
    http, namespace, operator = system.http, system.namespace, system.operator
    op = bearer(operator)
    for record in (P1_RECORD, P2_RECORD, SPARE_RECORD):
        created = await http.post("/v1/partners", json=record, headers=op)
        assert created.status_code == 201, created.text

    async def issue_partner_key(partner_id: str) -> tuple[str, str]:
        issued = await http.post(f"/v1/partners/{partner_id}/api-keys", json={"name": "crm"}, headers=op)
        assert issued.status_code == 201, issued.text
        return issued.json()["key_id"], issued.json()["api_key"]

    (_, p1), (_, p2) = await issue_partner_key(P1), await issue_partner_key(P2)
    (p1_spare, _), (p2_spare, _) = await issue_partner_key(P1), await issue_partner_key(P2)
    a = await system.register_enterprise(consent=True, contact_email="li.wei@a.example.cn")
    b = await system.register_enterprise(consent=False, contact_email="zhang.min@b.example.cn")
    (a_spare, a_spare_plaintext), (b_spare, _) = (
        await _enterprise_spare_key(namespace, a.id),
        await _enterprise_spare_key(namespace, b.id),
    )
    op_spare = key_id(await factories.operator_key(namespace))
    for spare, owner in [(a_spare, a.key), (b_spare, b.key), (p1_spare, p1), (p2_spare, p2), (op_spare, operator)]:
        revoked = await http.delete(f"/v1/api-keys/{spare}", headers=bearer(owner))
        assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text

    probe = await system.register_enterprise(consent=False, contact_email="probe@z.example.cn")
    probe_referrals = await _wait_until_matching_knows(http, operator, probe, [LEGAL_NEED, TREASURY_NEED])
    request_ids: dict[str, str] = {}
    referrals: dict[str, list[str]] = {}
    for name, who, need in (("A", a, LEGAL_NEED), ("B", b, TREASURY_NEED)):
        submitted = await http.post("/v1/service-requests", json={"needs": [need, need]}, headers=who.auth)
        assert submitted.status_code == 201, submitted.text
        request_ids[name] = submitted.json()["id"]
        referrals[name] = [r["id"] for r in submitted.json()["referrals"]]
    for name, partner_key in (("A", p1), ("B", p2)):
        for referral_id in referrals[name]:
            await _wait_offered(http, partner_key, referral_id)
    for name, who in (("A", a), ("B", b)):
        withdrawn = await http.post(f"/v1/referrals/{referrals[name][0]}/withdraw", headers=who.auth)
        assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn", withdrawn.text

    objects = {
        "A.enterprise": a.id,
        "B.enterprise": b.id,
        "A.request": request_ids["A"],
        "B.request": request_ids["B"],
        "A.referral": referrals["A"][0],
        "B.referral": referrals["B"][0],
        "P1.partner": P1,
        "P2.partner": P2,
        "spare.partner": SPARE,
        "A.key": a_spare,
        "B.key": b_spare,
        "P1.key": p1_spare,
        "P2.key": p2_spare,
        "operator.key": op_spare,
    }
    keys: dict[Who, str] = {"A": a.key, "B": b.key, "P1": p1, "P2": p2, "operator": operator}
    open_referrals = {"A": referrals["A"][1], "B": referrals["B"][1]}
    return Tenants(str(http.base_url), keys, a, b, objects, open_referrals, a_spare_plaintext, probe_referrals)


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Tenants]:
    async with running_world(new_namespace(infra), tmp_path_factory.mktemp("intake-access")) as system:
        yield await build_tenants(system)


@pytest.fixture(scope="module")
async def http(world: Tenants) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=world.url, timeout=10) as client:
        yield client


async def call(http: httpx.AsyncClient, world: Tenants, row: Row, headers: dict[str, str]) -> httpx.Response:
    path = row.path
    if row.target is not None:
        path, filled = re.subn(r"\{[a-z_]+\}", await world.resolve(http, row.target), path)
        assert filled == 1, f"{row.path} must have exactly one parameter for target {row.target}"
    body = BODIES[row.body](world) if row.body else None
    return await http.request(row.method, path, json=body, headers=headers)


# -- the tests ----------------------------------------------------------------------------------------------------


async def test_table_covers_every_endpoint_for_every_role(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    documented = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        if path not in UNDOCUMENTED
        for method in operations
        if method in {"get", "put", "post", "patch", "delete"}
    }
    tabled = {(row.path, row.method) for row in TABLE}
    assert documented - tabled == set(), "endpoints without rows: add them to TABLE"
    assert tabled - documented == set(), "rows for endpoints that do not exist"
    for endpoint in documented:
        roles = {row.role for row in TABLE if (row.path, row.method) == endpoint}
        assert roles == set(ROLES), f"{endpoint} lacks rows for {set(ROLES) - roles}"
    assert len({row.id for row in TABLE}) == len(TABLE), "two rows say the same thing"


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.id)
async def test_access(http: httpx.AsyncClient, world: Tenants, row: Row) -> None:
    answer = await call(http, world, row, world.auth(row.role))
    if row.status >= 400:
        assert_problem(answer, row.status)
        return
    assert answer.status_code == row.status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    if row.target is not None and row.method == "GET" and not row.path.endswith("/history"):
        assert body["id"] == world.objects[row.target], "the object asked for, not another"
    if row.path.endswith("/history"):
        assert [step["action"] for step in body][:1] == ["submitted"]
    if row.role in {"A", "B"}:  # the caller's own, never another's
        mine = world.objects[f"{row.role}.enterprise"]
        if row.path == "/v1/enterprises/me":
            assert body["id"] == mine
        if (row.method, row.path) == ("POST", "/v1/service-requests"):
            assert body["enterprise_id"] == mine
    if row.path == "/v1/partners/me":
        assert body["id"] == PARTNER_IDS[row.role]


CREDENTIALS: dict[str, Callable[[Tenants], dict[str, str]]] = {
    "garbage": lambda w: {"Authorization": "Bearer not-a-key"},
    "unknown": lambda w: bearer(f"gg_{'0' * 16}_{'A' * 43}"),
    "wrong-secret": lambda w: bearer(_other_secret(w.keys["operator"])),
    "revoked": lambda w: bearer(w.revoked_key),  # A's spare key, whole and correct, but revoked
    "basic": lambda w: {"Authorization": "Basic b3BlcmF0b3I6c2VjcmV0"},
}


def _other_secret(plaintext: str) -> str:
    return plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")


AUTHENTICATED = [row for row in TABLE if row.role == "anonymous" and row.status == 401]


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("row", AUTHENTICATED, ids=lambda row: f"{row.method} {row.path}")
async def test_bad_credentials_get_401(http: httpx.AsyncClient, world: Tenants, row: Row, credential: str) -> None:
    answer = await call(http, world, row, CREDENTIALS[credential](world))
    assert_problem(answer, 401)


async def test_lists_hold_only_what_the_caller_may_see(http: httpx.AsyncClient, world: Tenants) -> None:
    async def referral_ids(role: Who) -> set[str]:
        answer = await http.get("/v1/referrals", params={"limit": 100}, headers=world.auth(role))
        assert answer.status_code == 200, answer.text
        return {item["id"] for item in answer.json()["items"]}

    w_a, w_b = world.objects["A.referral"], world.objects["B.referral"]
    l_a, l_b = world.open_referrals["A"], world.open_referrals["B"]
    assert {w_a, l_a} <= await referral_ids("A") and not {w_b, l_b} & await referral_ids("A")
    assert {w_b, l_b} <= await referral_ids("B") and not {w_a, l_a} & await referral_ids("B")
    # Besides the probe enterprise's referrals (see _wait_until_matching_knows), each partner lists exactly its own.
    assert await referral_ids("P1") - world.probe_referrals == {w_a, l_a}
    assert await referral_ids("P2") - world.probe_referrals == {w_b, l_b}
    assert {w_a, l_a, w_b, l_b} <= await referral_ids("operator")

    async def request_owners(role: Who) -> set[str]:
        answer = await http.get("/v1/service-requests", params={"limit": 100}, headers=world.auth(role))
        assert answer.status_code == 200, answer.text
        return {item["enterprise_id"] for item in answer.json()["items"]}

    assert await request_owners("A") == {world.a.id}
    assert await request_owners("B") == {world.b.id}
    assert {world.a.id, world.b.id} <= await request_owners("operator")


@pytest.mark.parametrize(
    ("partner", "owner", "consented"),
    [("P1", "A", True), ("P2", "B", False)],
    ids=["A-consented", "B-did-not-consent"],
)
async def test_partner_sees_names_and_contact_only_after_accepting(
    http: httpx.AsyncClient, world: Tenants, partner: Who, owner: Who, consented: bool
) -> None:
    # Runs on L_A / L_B, which no row of the table touches.
    enterprise = world.a if owner == "A" else world.b
    referral_id = world.open_referrals[owner]
    before = await http.get(f"/v1/referrals/{referral_id}", headers=world.auth(partner))
    assert before.status_code == 200, before.text
    assert before.json()["enterprise"] == {
        "id": None,
        "legal_name_zh": None,
        "legal_name_en": None,
        "sector": enterprise.profile["sector"],
        "size_band": enterprise.profile["size_band"],
        "hq_province": enterprise.profile["hq_province"],
        "contact": None,
    }
    assert before.json()["candidates"] is None, "matching's ranking is for operators"
    listed = await http.get("/v1/referrals", params={"limit": 100}, headers=world.auth(partner))
    in_list = next(item for item in listed.json()["items"] if item["id"] == referral_id)
    assert in_list["enterprise"] == before.json()["enterprise"], "the list hides as much as the single view"

    accepted = await http.post(f"/v1/referrals/{referral_id}/accept", headers=world.auth(partner))
    assert accepted.status_code == 200, accepted.text
    after = await http.get(f"/v1/referrals/{referral_id}", headers=world.auth(partner))
    assert after.status_code == 200, after.text
    for view in (accepted.json(), after.json()):
        assert view["status"] == "accepted" and view["partner_id"] == PARTNER_IDS[partner]
        shown = view["enterprise"]
        assert shown["id"] == enterprise.id
        assert shown["legal_name_en"] == enterprise.profile["legal_name_en"]
        assert shown["legal_name_zh"] == enterprise.profile["legal_name_zh"]
        assert shown["contact"] == (enterprise.profile["contact"] if consented else None)

    # The withdrawn referral it never accepted still hides who the enterprise is,
    withdrawn = await http.get(f"/v1/referrals/{world.objects[f'{owner}.referral']}", headers=world.auth(partner))
    assert withdrawn.json()["enterprise"]["legal_name_en"] is None and withdrawn.json()["enterprise"]["contact"] is None
    # and the other partner still cannot see the accepted one at all.
    other: Who = "P2" if partner == "P1" else "P1"
    assert_problem(await http.get(f"/v1/referrals/{referral_id}", headers=world.auth(other)), 404)


async def test_history_does_not_reveal_the_enterprise_to_a_partner_that_did_not_accept(
    http: httpx.AsyncClient, world: Tenants
) -> None:
    withdrawn = world.objects["A.referral"]  # offered to P1, never accepted
    view = await http.get(f"/v1/referrals/{withdrawn}", headers=world.auth("P1"))
    assert view.status_code == 200 and view.json()["enterprise"]["id"] is None, "the view hides who it is"
    history = await http.get(f"/v1/referrals/{withdrawn}/history", headers=world.auth("P1"))
    assert history.status_code == 200, history.text
    assert world.a.id not in history.text

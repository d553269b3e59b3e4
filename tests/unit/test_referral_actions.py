"""What a partner that may not start or complete a referral is told: the rule that stands in its way, not just
"only the partner that accepted this referral can do that" (the aggregate's `start` and `complete`)."""

from datetime import UTC, datetime

import pytest

from goglobal_contract.enums import ReferralStatus as S
from intake.domain.inputs.service_request import Completion, Need
from intake.domain.service_requests import Actor, DomainError, Referral, ServiceRequest

ME, OTHER = "me-legal", "other-legal"
NOW = datetime(2025, 3, 4, tzinfo=UTC)
DONE = Completion.model_validate({"outcome": "engaged", "notes": "Engagement letter signed."})


def act(request: ServiceRequest, referral_id: str, action: str) -> None:
    actor = Actor(f"partner:{ME}", "req-1")
    if action == "start":
        request.start(referral_id, ME, actor, NOW)
    else:
        request.complete(referral_id, ME, DONE, actor, NOW)


def request_with(referral: Referral) -> ServiceRequest:
    return ServiceRequest("r" * 32, "e" * 32, "Bright Solar", datetime(2025, 3, 3, tzinfo=UTC), [referral])


def referral(status: S, offered_to: list[str], open_offers: list[str], partner_id: str | None = None) -> Referral:
    need = Need.model_validate({"service_category": "legal", "target_markets": ["AE"]})
    return Referral("f" * 32, need, status, offered_to, open_offers, partner_id=partner_id)


@pytest.mark.parametrize("action", ["start", "complete"])
@pytest.mark.parametrize(
    ("ref", "told"),
    [
        (referral(S.OFFERED, [ME], [ME]), "this referral is offered to you, not accepted: accept it first"),
        (referral(S.OFFERED, [ME, OTHER], [ME, OTHER]), "this referral is offered to you, not accepted"),
        (referral(S.ACCEPTED, [ME, OTHER], [], OTHER), "another partner accepted this referral"),
        (referral(S.DECLINED, [ME], []), "your offer of this referral ended before you accepted it"),
        (referral(S.OFFERED, [ME, OTHER], [OTHER]), "ended before you accepted it (declined, expired or withdrawn"),
        (referral(S.WITHDRAWN, [ME], []), "the referral is withdrawn"),
    ],
    ids=["offered", "offered-in-parallel", "accepted-elsewhere", "declined", "expired-others-open", "withdrawn"],
)
def test_a_partner_that_did_not_accept_is_told_why_it_may_not_act(ref: Referral, told: str, action: str) -> None:
    with pytest.raises(DomainError) as refused:
        act(request_with(ref), ref.id, action)
    assert told in str(refused.value)
    assert f"{action} it" in str(refused.value)


@pytest.mark.parametrize("status", [S.ACCEPTED, S.IN_PROGRESS, S.COMPLETED])
def test_the_partner_that_accepted_is_left_to_the_state_machine(status: S) -> None:
    ref = referral(status, [ME, OTHER], [], ME)
    request = request_with(ref)
    if status is not S.IN_PROGRESS:  # the state machine refuses these steps, not the acceptance rule
        with pytest.raises(DomainError) as refused:
            act(request, ref.id, "complete")
        assert "only the partner" not in str(refused.value) and "accept it first" not in str(refused.value)
    else:
        act(request, ref.id, "complete")
        assert request.referral(ref.id).status is S.COMPLETED

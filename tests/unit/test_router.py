"""Typed routing: each handler gets the payload class it was registered for, once per type, and says whether the
processed-event log is needed for it."""

from datetime import UTC, datetime

import pytest

from goglobal_contract.envelope import Envelope
from goglobal_contract.events import ReferralAccepted, ReferralSubmitted
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.router import EventRouter, PayloadDispatch
from tests.unit.test_envelope import submitted


def accepted() -> Envelope:
    payload = ReferralAccepted(referral_id="r" * 32, partner_id="lion-rock", accepted_at=datetime.now(UTC))
    return Envelope.wrap(payload, source="/test", subject="r" * 32)


async def test_each_event_reaches_the_handler_of_its_payload_class() -> None:
    seen: list[tuple[str, str]] = []

    async def on_submitted(event: ReferralSubmitted, envelope: Envelope) -> None:
        seen.append(("submitted", event.enterprise_name))

    async def on_accepted(event: ReferralAccepted, envelope: Envelope) -> None:
        seen.append(("accepted", event.partner_id))

    routes = EventRouter()
    routes.on(ReferralSubmitted, on_submitted, self_deduplicating=True)
    routes.on(ReferralAccepted, on_accepted)
    for envelope in (submitted(), accepted()):
        await routes.handlers[envelope.type](envelope)
    assert seen == [("submitted", "Bright Solar"), ("accepted", "lion-rock")]
    assert routes.types == {ReferralSubmitted.event_type, ReferralAccepted.event_type}
    assert routes.self_deduplicating == {ReferralSubmitted.event_type}


async def test_a_type_has_one_handler_even_across_included_routers() -> None:
    async def handler(event: ReferralSubmitted, envelope: Envelope) -> None:
        return None

    first, second = EventRouter(), EventRouter()
    first.on(ReferralSubmitted, handler)
    with pytest.raises(ValueError, match="has a handler already"):
        first.on(ReferralSubmitted, handler)
    second.on(ReferralSubmitted, handler)
    with pytest.raises(ValueError, match="has a handler already"):
        first.include(second)


async def test_an_included_router_brings_its_routes_and_its_log_policy() -> None:
    async def handler(event: ReferralAccepted, envelope: Envelope) -> None:
        return None

    main, other = EventRouter(), EventRouter()
    other.on(ReferralAccepted, handler, self_deduplicating=True)
    main.include(other)
    assert main.types == main.self_deduplicating == {ReferralAccepted.event_type}


def test_a_payload_of_another_class_than_registered_is_refused_for_good() -> None:
    dispatch: PayloadDispatch[None, str] = PayloadDispatch()
    dispatch.on(ReferralAccepted, lambda event, _: event.partner_id)
    forged = submitted()
    object.__setattr__(forged.data, "event_type", ReferralAccepted.event_type)  # a contract bug, not a sender's
    with pytest.raises(PermanentEventError, match="carries a ReferralSubmitted"):
        dispatch(forged.data, None)

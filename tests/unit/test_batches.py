"""One consumer, several batch handlers: each sees only its own types, in order, and the outcomes come back in
the order of the poll."""

from dataclasses import dataclass, field

import pytest

from goglobal_contract.envelope import Envelope
from goglobal_contract.events import ReferralAccepted, ReferralSubmitted
from goglobal_shared.consumer import Batches
from tests.unit.test_envelope import submitted
from tests.unit.test_router import accepted


@dataclass
class Recording:
    types: frozenset[str]
    fail: bool = False
    seen: list[str] = field(default_factory=list)

    async def __call__(self, envelopes: list[Envelope]) -> list[Exception | None]:
        self.seen.extend(e.id for e in envelopes)
        return [RuntimeError(e.id) if self.fail else None for e in envelopes]


async def test_each_handler_gets_its_own_types_and_outcomes_keep_the_poll_order() -> None:
    decisions = Recording(frozenset({ReferralAccepted.event_type}), fail=True)
    projections = Recording(frozenset({ReferralSubmitted.event_type}))
    poll = [submitted(), accepted(), submitted()]
    outcomes = await Batches((decisions, projections))(poll)
    assert decisions.seen == [poll[1].id]
    assert projections.seen == [poll[0].id, poll[2].id]
    assert [type(o) for o in outcomes] == [type(None), RuntimeError, type(None)]
    assert Batches((decisions, projections)).types == {ReferralAccepted.event_type, ReferralSubmitted.event_type}


async def test_a_handler_with_nothing_in_the_poll_is_not_called() -> None:
    idle = Recording(frozenset({ReferralAccepted.event_type}))
    await Batches((idle, Recording(frozenset({ReferralSubmitted.event_type}))))([submitted()])
    assert idle.seen == []


def test_two_handlers_may_not_claim_one_type() -> None:
    same = frozenset({ReferralSubmitted.event_type})
    with pytest.raises(ValueError, match="two batch handlers"):
        Batches((Recording(same), Recording(same)))

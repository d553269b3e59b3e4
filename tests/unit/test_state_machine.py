import itertools

from hypothesis import given
from hypothesis import strategies as st

from goglobal_contract.enums import ReferralStatus as S
from goglobal_contract.state_machine import TERMINAL, TRANSITIONS, IllegalTransition, can_transition, transition

statuses = st.sampled_from(list(S))


@given(statuses, statuses)
def test_transition_returns_target_or_raises(current: S, target: S) -> None:
    if can_transition(current, target):
        assert transition(current, target) is target
    else:
        try:
            transition(current, target)
        except IllegalTransition as exc:
            assert exc.current is current and exc.target is target
            assert current.value in str(exc)
        else:
            raise AssertionError("an illegal transition was allowed")


@given(st.sampled_from(sorted(TERMINAL)), statuses)
def test_terminal_states_have_no_way_out(terminal: S, target: S) -> None:
    assert not can_transition(terminal, target)


@given(st.sampled_from([s for s in S if s not in TERMINAL]))
def test_withdraw_and_close_from_every_open_state(open_state: S) -> None:
    assert can_transition(open_state, S.WITHDRAWN)
    assert can_transition(open_state, S.CLOSED)


def test_every_state_is_reachable_from_submitted() -> None:
    seen, frontier = {S.SUBMITTED}, [S.SUBMITTED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(S)


def test_the_happy_path() -> None:
    path = [S.SUBMITTED, S.MATCHING, S.MATCHED, S.OFFERED, S.ACCEPTED, S.IN_PROGRESS, S.COMPLETED]
    for current, target in itertools.pairwise(path):
        assert transition(current, target) is target


def test_no_self_loops() -> None:
    assert all(status not in targets for status, targets in TRANSITIONS.items())

"""The referral lifecycle, defined once: every legal transition is listed here and nowhere else.

`matched` (a ranked candidate list exists) sits between `matching` and `offered`; intake can see
`submitted -> matched` directly because it learns of the match only from the matched event.
"""

from goglobal_contract.enums import ReferralStatus as S

TERMINAL: frozenset[S] = frozenset({S.COMPLETED, S.WITHDRAWN, S.CLOSED})

_FORWARD: dict[S, frozenset[S]] = {
    S.SUBMITTED: frozenset({S.MATCHING, S.MATCHED, S.UNMATCHED}),
    S.MATCHING: frozenset({S.MATCHED, S.UNMATCHED}),
    S.MATCHED: frozenset({S.OFFERED, S.UNMATCHED}),
    S.OFFERED: frozenset({S.ACCEPTED, S.DECLINED, S.EXPIRED}),
    S.DECLINED: frozenset({S.OFFERED, S.UNMATCHED}),
    S.EXPIRED: frozenset({S.OFFERED, S.UNMATCHED}),
    S.UNMATCHED: frozenset({S.MATCHED, S.OFFERED}),
    S.ACCEPTED: frozenset({S.IN_PROGRESS}),
    S.IN_PROGRESS: frozenset({S.COMPLETED}),
}

# Withdrawal by the enterprise and closure by an operator are allowed from every open state.
TRANSITIONS: dict[S, frozenset[S]] = {
    status: (_FORWARD.get(status, frozenset()) | {S.WITHDRAWN, S.CLOSED}) if status not in TERMINAL else frozenset()
    for status in S
}


class IllegalTransition(ValueError):
    def __init__(self, current: S, target: S) -> None:
        super().__init__(f"a referral cannot go from {current.value!r} to {target.value!r}")
        self.current = current
        self.target = target


def can_transition(current: S, target: S) -> bool:
    return target in TRANSITIONS[current]


def transition(current: S, target: S) -> S:
    """Returns the new status, or raises IllegalTransition."""
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    return target

"""What matching's use cases refuse. The edges translate these in one place each (the consumer dead-letters the
event: it can never apply)."""


class MatchingError(Exception):
    """A use case cannot apply to the referral or partner it names."""


class NoPlan(MatchingError):
    def __init__(self, referral_id: str) -> None:
        super().__init__(f"no offer plan for referral {referral_id}")


class PartnerNotAssignable(MatchingError):
    def __init__(self, partner_id: str) -> None:
        super().__init__(f"partner {partner_id} is not an active partner in the directory")

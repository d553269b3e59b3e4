"""Closed vocabularies shared by every service and by partners' consumers."""

from enum import StrEnum


class ServiceCategory(StrEnum):
    LEGAL = "legal"
    ACCOUNTING = "accounting"
    TAX = "tax"
    BANKING_AND_FUND_MANAGEMENT = "banking_and_fund_management"
    TALENT_RECRUITMENT = "talent_recruitment"
    REGULATORY_COMPLIANCE = "regulatory_compliance"
    INTELLECTUAL_PROPERTY = "intellectual_property"
    MARKET_ENTRY = "market_entry"
    LOGISTICS = "logistics"
    MARKETING = "marketing"


class ReferralStatus(StrEnum):
    SUBMITTED = "submitted"
    MATCHING = "matching"
    MATCHED = "matched"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DECLINED = "declined"
    EXPIRED = "expired"
    UNMATCHED = "unmatched"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"


class OfferStrategy(StrEnum):
    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"


class Urgency(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class BudgetBand(StrEnum):
    UNDER_50K_USD = "under_50k_usd"
    FROM_50K_TO_200K_USD = "from_50k_to_200k_usd"
    FROM_200K_TO_1M_USD = "from_200k_to_1m_usd"
    OVER_1M_USD = "over_1m_usd"
    UNDISCLOSED = "undisclosed"


class DeclineReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    NOT_ELIGIBLE = "not_eligible"
    OUT_OF_SCOPE = "out_of_scope"
    CONFLICT_OF_INTEREST = "conflict_of_interest"
    OTHER = "other"


class Outcome(StrEnum):
    ENGAGED = "engaged"
    ADVICE_GIVEN = "advice_given"
    NOT_PURSUED = "not_pursued"
    ENTERPRISE_UNRESPONSIVE = "enterprise_unresponsive"
    OTHER = "other"

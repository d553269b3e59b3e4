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

"""Valid domain documents for tests: partners, enterprises, requests, and the first operator key."""

import random
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from goglobal_contract.events import PartnerUpserted
from goglobal_contract.identifiers import uscc_with_check
from intake.adapters.api_key_repository import ApiKeyRepository
from intake.auth.keys import Role
from tests.support import Namespace

_USCC_BODY = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def partner(partner_id: str, categories: list[str], markets: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "id": partner_id,
        "name": partner_id.replace("-", " ").title(),
        "categories": [{"category": c, "specialties": []} for c in categories],
        "markets": markets,
        "languages": ["en", "zh-Hant"],
        "capacity": 10,
        "contact": {"name": "Chan Tai Man", "email": f"desk@{partner_id}.example.hk", "phone": "+85221234567"},
        **extra,
    }


def partner_upserted(**change: Any) -> PartnerUpserted:
    """The event a partner's registration publishes, with `change` applied to its fields."""
    return PartnerUpserted.model_validate(
        {
            "partner_id": "gulf-legal",
            "name": "Gulf Legal",
            "categories": [{"category": "legal", "specialties": []}],
            "markets": ["AE"],
            "capacity": 5,
            "response_window_hours": 48,
            "offer_strategy": "sequential",
            "parallel_offers": 1,
            "active": True,
            "version": 1,
            "updated_at": datetime(2026, 11, 26, tzinfo=UTC),
            **change,
        }
    )


def enterprise(consent: bool = True, seed: int | None = None) -> dict[str, Any]:
    rng = random.Random(seed)
    body = "91440300" + "".join(rng.choice(_USCC_BODY) for _ in range(9))
    return {
        "legal_name_zh": "深圳光明太阳能有限公司",
        "legal_name_en": "Shenzhen Bright Solar Co., Ltd.",
        "uscc": uscc_with_check(body),
        "hq_province": "Guangdong",
        "hq_city": "Shenzhen",
        "sector": "C27",
        "size_band": "medium",
        "contact": {"name": "Li Wei", "email": "li.wei@brightsolar.example.cn", "phone": "+8613812345678"},
        "consent": {"share_contact_with_accepted_partners": consent, "receive_email": True},
        "preferred_languages": ["zh-Hans", "en"],
    }


TWO_NEEDS = {
    "needs": [
        {
            "service_category": "legal",
            "target_markets": ["AE", "SA"],
            "description": "Dubai subsidiary",
            "urgency": "high",
            "languages": ["en"],
        },
        {
            "service_category": "banking_and_fund_management",
            "target_markets": ["AE"],
            "description": "Cross-border treasury account",
        },
    ]
}


async def operator_key(namespace: Namespace, name: str = "test-operator") -> str:
    """The first operator key is made the way `goglobal operators create-key` makes it."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(namespace.infra.mongodb_uri, tz_aware=True)
    try:
        keys = ApiKeyRepository(client[namespace.database("intake")]["api_keys"])
        return (await keys.create(Role.OPERATOR, name, "test", datetime.now(UTC))).plaintext
    finally:
        await client.close()

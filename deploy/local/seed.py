"""Seeds a running system with the demo directory, an operator, an enterprise and a partner key.

Goes through the public API wherever one exists (partners, registration, partner keys); only the first
operator key is written to the database directly, the way `goglobal operators create-key` does it.
Safe to run again: partners are PUT (replaced), and an enterprise registered before gets a fresh key.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from goglobal_shared.mongo import make_client
from goglobal_shared.settings import ServiceSettings
from intake.adapters.api_key_repository import ApiKeyRepository
from intake.auth.keys import Role

DEMO = Path(__file__).resolve().parent / "demo"
DEMO_PARTNER = "lexbridge-legal"


@dataclass(frozen=True)
class DemoKeys:
    operator: str
    enterprise: str
    partner: str


async def _direct_key(settings: ServiceSettings, role: Role, subject_id: str, name: str) -> str:
    client = make_client(settings.mongodb_uri)
    try:
        keys = ApiKeyRepository(client[settings.database]["api_keys"])
        return (await keys.create(role, subject_id, name, datetime.now(UTC))).plaintext
    finally:
        await client.close()


async def _enterprise_key(http: httpx.AsyncClient, settings: ServiceSettings) -> str:
    profile: dict[str, Any] = json.loads((DEMO / "enterprise.json").read_text())
    answer = await http.post("/v1/enterprises", json=profile)
    if answer.status_code == 201:
        return str(answer.json()["api_key"]["api_key"])
    if answer.status_code != 409:
        answer.raise_for_status()
    client = make_client(settings.mongodb_uri)
    try:  # registered by an earlier run: issue another key for it
        doc = await client[settings.database]["enterprises"].find_one({"profile.uscc": profile["uscc"]})
    finally:
        await client.close()
    assert doc is not None
    return await _direct_key(settings, Role.ENTERPRISE, doc["_id"], "demo")


async def seed(api_url: str) -> DemoKeys:
    settings = ServiceSettings(service_name="intake")
    operator = await _direct_key(settings, Role.OPERATOR, "demo-operator", "make run")
    headers = {"Authorization": f"Bearer {operator}"}
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        for partner in json.loads((DEMO / "partners.json").read_text())["partners"]:
            body = {k: v for k, v in partner.items() if k != "id"}
            (await http.put(f"/v1/partners/{partner['id']}", json=body, headers=headers)).raise_for_status()
        key = await http.post(f"/v1/partners/{DEMO_PARTNER}/api-keys", json={"name": "demo"}, headers=headers)
        key.raise_for_status()
        enterprise = await _enterprise_key(http, settings)
    return DemoKeys(operator, enterprise, str(key.json()["api_key"]))


def run(api_url: str) -> DemoKeys:
    return asyncio.run(seed(api_url))

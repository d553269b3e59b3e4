"""Enterprises: open registration (with the enterprise's first API key) and changes to the profile."""

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from intake.auth.keys import IssuedKey, Role
from intake.domain.inputs.enterprise import EnterpriseProfile
from intake.service_layer.errors import Conflict, FieldError, InvalidInput, NotFound
from intake.service_layer.ports import AlreadyStored, Clock, EnterpriseStore, KeyStore, Record


@dataclass(frozen=True)
class Registered:
    enterprise: Record
    key: IssuedKey  # its plaintext is shown once, in the answer to the registration


@dataclass(frozen=True)
class Enterprises:
    enterprises: EnterpriseStore
    keys: KeyStore
    clock: Clock

    async def register(self, profile: EnterpriseProfile) -> Registered:
        """One company registers once: its Unified Social Credit Code is unique."""
        now = self.clock()
        try:
            doc = await self.enterprises.register(profile, now)
        except AlreadyStored:
            raise Conflict("an enterprise with this credit code is registered", "already-registered") from None
        return Registered(doc, await self.keys.create(Role.ENTERPRISE, doc["_id"], "registration", now))

    async def read(self, enterprise_id: str) -> Record:
        doc = await self.enterprises.get(enterprise_id)
        if doc is None:
            raise NotFound("enterprise", enterprise_id)
        return doc

    async def update(self, enterprise_id: str, changes: dict[str, Any]) -> Record:
        """Changes the given fields (inside `consent` and `contact` too); refused when the result is not valid."""
        try:
            updated = await self.enterprises.update(enterprise_id, changes, self.clock())
        except ValidationError as exc:
            fields = [FieldError(".".join(map(str, e["loc"])), e["msg"], e["type"]) for e in exc.errors()]
            raise InvalidInput(fields) from exc
        if updated is None:
            raise NotFound("enterprise", enterprise_id)
        return updated

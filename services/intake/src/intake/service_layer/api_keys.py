"""API keys: anyone issues more keys for itself and revokes its own; operators issue operator keys and revoke any.

A revoked key is refused at once by this replica and, through the `api_key_revoked` event its revocation queues,
by every other replica within moments."""

from dataclasses import dataclass

from intake.auth.keys import IssuedKey, KeyInfo, Principal, Role
from intake.service_layer.errors import NotFound
from intake.service_layer.ports import Clock, KeyStore


@dataclass(frozen=True)
class ApiKeyAccounts:
    keys: KeyStore
    clock: Clock

    async def own(self, caller: Principal) -> list[KeyInfo]:
        return await self.keys.for_subject(caller.role, caller.subject_id)

    async def issue_own(self, caller: Principal, name: str) -> IssuedKey:
        """Another key of the caller's role and owner (e.g. before revoking the one in use)."""
        return await self.keys.create(caller.role, caller.subject_id, name, self.clock())

    async def issue_operator(self, caller: Principal, name: str) -> IssuedKey:
        """A key for another operator, named after them."""
        return await self.keys.create(Role.OPERATOR, name, f"created by {caller.label}", self.clock())

    async def revoke(self, caller: Principal, key_id: str) -> KeyInfo:
        """The caller's own key, or any key for an operator; another's key does not exist for the caller."""
        info = await self.keys.get(key_id)
        own = info is not None and info.role is caller.role and info.subject_id == caller.subject_id
        if info is None or not (own or caller.role is Role.OPERATOR):
            raise NotFound("api-key", key_id)
        await self.keys.revoke(key_id, self.clock())
        revoked = await self.keys.get(key_id)
        assert revoked is not None
        return revoked

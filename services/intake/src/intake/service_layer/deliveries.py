"""Redelivery: a partner (its own deliveries) or an operator (any) asks notifications to send again. The request
is a command stored with its event in one write; notifications carries it out."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from goglobal_contract.envelope import Envelope
from goglobal_contract.ids import new_id
from goglobal_contract.notification_events import RedeliveryRequested
from intake.auth.keys import Principal, Role
from intake.service_layer.errors import NotFound
from intake.service_layer.ports import Clock, DeliveryStore

SOURCE = "/goglobal/intake"


@dataclass(frozen=True)
class Redeliveries:
    deliveries: DeliveryStore
    clock: Clock

    async def one(self, caller: Principal, delivery_id: str) -> str:
        """Returns the redelivery request's id. A partner's view holds only its own deliveries."""
        doc = await self.deliveries.delivery(delivery_id)
        if doc is None or (caller.role is Role.PARTNER and doc["recipient_id"] != caller.subject_id):
            raise NotFound("delivery", delivery_id)
        return await self._request(caller, doc["recipient_id"], delivery_ids=[delivery_id])

    async def failed_since(self, caller: Principal, since: datetime, partner_id: str | None) -> str:
        """Every failed (or held) delivery since then, of the partner (a partner: its own; an operator: the one
        named, or every partner's)."""
        partner = caller.subject_id if caller.role is Role.PARTNER else partner_id
        return await self._request(caller, partner, failed_since=since)

    async def _request(
        self,
        caller: Principal,
        partner_id: str | None,
        delivery_ids: Sequence[str] = (),
        failed_since: datetime | None = None,
    ) -> str:
        request_id, now = new_id(), self.clock()
        asked = RedeliveryRequested(
            request_id=request_id,
            requested_by=caller.label,
            requested_at=now,
            partner_id=partner_id,
            delivery_ids=list(delivery_ids),
            failed_since=failed_since,
        )
        envelope = Envelope.wrap(asked, source=SOURCE, subject=partner_id or "operators")
        await self.deliveries.command(request_id, envelope, now)
        return request_id

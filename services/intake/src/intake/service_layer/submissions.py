"""Service requests: an enterprise submits one (each need becomes a referral); enterprises read their own,
operators all."""

from dataclasses import dataclass

from goglobal_contract.enums import ReferralStatus
from intake.auth.keys import Principal, Role
from intake.domain.inputs.service_request import Need
from intake.domain.service_requests import Actor, ServiceRequest, submit
from intake.service_layer.errors import NotFound
from intake.service_layer.ports import Clock, EnterpriseStore, NotStored, Record, RequestFilter, RequestStore


@dataclass(frozen=True)
class Submitted:
    """The stored request; `earlier` when it is the first submission of a retry with the same idempotency key."""

    request: ServiceRequest
    enterprise: Record
    earlier: bool


@dataclass(frozen=True)
class Shown:
    request: ServiceRequest
    enterprise: Record | None


@dataclass(frozen=True)
class Submissions:
    requests: RequestStore
    enterprises: EnterpriseStore
    clock: Clock

    async def submit(
        self, caller: Principal, needs: list[Need], cause_id: str, idempotency_key: str | None = None
    ) -> Submitted:
        """The request and every referral's `referral.submitted` event are stored in one write. With an
        idempotency key used before, the first submission stands (a retry after a lost answer)."""
        enterprise = await self.enterprises.recent(caller.subject_id)
        assert enterprise is not None, "an enterprise key always belongs to a registered enterprise"
        now = self.clock()
        actor = Actor(caller.label, cause_id)
        request = submit(caller.subject_id, enterprise["profile"], needs, actor, now, idempotency_key=idempotency_key)
        stored = await self.requests.add(request, now)
        return Submitted(stored, enterprise, earlier=stored.id != request.id)

    async def read(self, caller: Principal, request_id: str) -> Shown:
        """An enterprise's own request (another's does not exist for it); any, for an operator."""
        try:
            request = await self.requests.get(request_id)
        except NotStored:
            raise NotFound("service-request", request_id) from None
        if caller.role is Role.ENTERPRISE and request.enterprise_id != caller.subject_id:
            raise NotFound("service-request", request_id)
        return Shown(request, await self.enterprises.get(request.enterprise_id))

    async def page(
        self, caller: Principal, status: ReferralStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[Shown], str | None]:
        """Newest first, and the cursor of the next page (None on the last)."""
        own = caller.subject_id if caller.role is Role.ENTERPRISE else None
        requests = await self.requests.page(RequestFilter(enterprise_id=own, status=status), limit + 1, cursor)
        items = [Shown(r, await self.enterprises.get(r.enterprise_id)) for r in requests[:limit]]
        return items, requests[limit - 1].id if len(requests) > limit else None

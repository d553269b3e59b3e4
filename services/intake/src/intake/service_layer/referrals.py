"""A referral: reading it as the caller may, and every party's action on it.

A caller who may not see a referral is told it does not exist, whether or not it does. Each action runs on the
request as it is stored now (again if another writer came first) and is saved with the events it queued."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from goglobal_contract.enums import ReferralStatus
from intake.auth.keys import Principal, Role
from intake.domain.inputs.enterprise import profile_of
from intake.domain.inputs.service_request import Completion, Decline, Rating
from intake.domain.service_requests import Actor, DomainError, NotAParty, Referral, ServiceRequest
from intake.service_layer.errors import Conflict, NotFound, PartnerNotActive
from intake.service_layer.ports import (
    Clock,
    EnterpriseStore,
    NotStored,
    PartnerStore,
    Record,
    RequestFilter,
    RequestStore,
)

# Changes the request (a domain command with its arguments bound); returns the enterprise if it read it.
Change = Callable[[ServiceRequest, datetime], Awaitable[Record | None]]


def visible(principal: Principal, request: ServiceRequest, referral: Referral) -> bool:
    """An enterprise sees its own referrals; a partner those offered to it; operators everything."""
    if principal.role is Role.OPERATOR:
        return True
    if principal.role is Role.ENTERPRISE:
        return request.enterprise_id == principal.subject_id
    return principal.subject_id in referral.offered_to


@dataclass(frozen=True)
class Seen:
    """A referral, its request and its enterprise, for the caller to be shown what its role may see."""

    request: ServiceRequest
    referral: Referral
    enterprise: Record | None


@dataclass(frozen=True)
class SeenPage:
    items: list[Seen]
    next_cursor: str | None


def _plain(command: Callable[[ServiceRequest, datetime], None]) -> Change:
    async def run(request: ServiceRequest, now: datetime) -> None:
        command(request, now)

    return run


@dataclass(frozen=True)
class Referrals:
    requests: RequestStore
    enterprises: EnterpriseStore
    partners: PartnerStore
    clock: Clock

    async def find(self, caller: Principal, referral_id: str) -> ServiceRequest:
        """The request holding the referral, if the caller may see it."""
        try:
            request = await self.requests.by_referral(referral_id)
        except NotStored:
            raise NotFound("referral", referral_id) from None
        if not visible(caller, request, request.referral(referral_id)):
            raise NotFound("referral", referral_id)
        return request

    async def read(self, caller: Principal, referral_id: str) -> Seen:
        request = await self.find(caller, referral_id)
        return Seen(request, request.referral(referral_id), await self.enterprises.get(request.enterprise_id))

    async def page(self, caller: Principal, status: ReferralStatus | None, limit: int, cursor: str | None) -> SeenPage:
        """Partners: referrals offered to them. Enterprises: their own. Operators: all. `cursor` is `<request id>`
        (continue after that request) or `<request id>.<n>` (at its n-th listed referral)."""
        chosen = RequestFilter(
            enterprise_id=caller.subject_id if caller.role is Role.ENTERPRISE else None,
            partner_id=caller.subject_id if caller.role is Role.PARTNER else None,
            status=status,
        )
        after, skip = _parse_cursor(cursor)
        items: list[Seen] = []
        while True:
            requests = await self.requests.page(chosen, limit, after, include_after=skip > 0)
            for request in requests:
                enterprise = await self.enterprises.get(request.enterprise_id)
                shown = [
                    r
                    for r in request.referrals
                    if visible(caller, request, r) and (status is None or r.status is status)
                ]
                start = skip if request.id == after else 0
                for position in range(start, len(shown)):
                    if len(items) == limit:  # full: the next page starts inside this request
                        return SeenPage(items, f"{request.id}.{position}")
                    items.append(Seen(request, shown[position], enterprise))
            if len(requests) < limit:
                return SeenPage(items, None)
            after, skip = requests[-1].id, 0

    async def accept(self, caller: Principal, referral_id: str, cause_id: str) -> Seen:
        actor = Actor(caller.label, cause_id)

        async def accept_now(request: ServiceRequest, now: datetime) -> Record | None:
            # Read as the change is recorded (again if another writer came first): the consent at this moment decides
            # whether the partner is given the contact.
            enterprise = await self.enterprises.get(request.enterprise_id)
            profile = profile_of(enterprise)
            if profile is None:
                raise DomainError(f"the enterprise behind referral {referral_id} is not registered")
            request.accept(referral_id, caller.subject_id, profile, actor, now)
            return enterprise

        return await self._act(caller, referral_id, accept_now)

    async def decline(self, caller: Principal, referral_id: str, decline: Decline, cause_id: str) -> Seen:
        actor = Actor(caller.label, cause_id)
        change = _plain(lambda r, now: r.decline(referral_id, caller.subject_id, decline, actor, now))
        return await self._act(caller, referral_id, change)

    async def start(self, caller: Principal, referral_id: str, cause_id: str) -> Seen:
        actor = Actor(caller.label, cause_id)
        return await self._act(
            caller, referral_id, _plain(lambda r, now: r.start(referral_id, caller.subject_id, actor, now))
        )

    async def complete(self, caller: Principal, referral_id: str, completion: Completion, cause_id: str) -> Seen:
        actor = Actor(caller.label, cause_id)
        change = _plain(lambda r, now: r.complete(referral_id, caller.subject_id, completion, actor, now))
        return await self._act(caller, referral_id, change)

    async def rate(self, caller: Principal, referral_id: str, rating: Rating, cause_id: str) -> Seen:
        actor = Actor(caller.label, cause_id)
        return await self._act(caller, referral_id, _plain(lambda r, now: r.rate(referral_id, rating, actor, now)))

    async def withdraw(self, caller: Principal, referral_id: str, cause_id: str) -> Seen:
        actor = Actor(caller.label, cause_id)
        return await self._act(caller, referral_id, _plain(lambda r, now: r.withdraw(referral_id, actor, now)))

    async def close(self, caller: Principal, referral_id: str, reason: str, cause_id: str) -> Seen:
        actor = Actor(caller.label, cause_id)
        return await self._act(caller, referral_id, _plain(lambda r, now: r.close(referral_id, reason, actor, now)))

    async def assign(self, caller: Principal, referral_id: str, partner_id: str, cause_id: str) -> Seen:
        """An operator picks the partner for an unmatched referral; matching then offers it to them."""
        partner = await self.partners.get(partner_id) if partner_id else None
        if partner is None or not partner["profile"]["active"]:
            raise PartnerNotActive(partner_id)
        actor = Actor(caller.label, cause_id)
        change = _plain(lambda r, now: r.assign(referral_id, partner_id, actor, now))
        return await self._act(caller, referral_id, change)

    async def _act(self, caller: Principal, referral_id: str, change: Change) -> Seen:
        read: list[Record | None] = []

        async def run(request: ServiceRequest) -> bool:
            if not visible(caller, request, request.referral(referral_id)):
                raise NotAParty(referral_id)
            read[:] = [await change(request, self.clock())]
            return True

        try:
            request = await self.requests.mutate(referral_id, run, self.clock)
        except (NotAParty, NotStored):
            raise NotFound("referral", referral_id) from None
        except DomainError as exc:
            raise Conflict(str(exc)) from exc
        enterprise = (read[0] if read else None) or await self.enterprises.get(request.enterprise_id)
        return Seen(request, request.referral(referral_id), enterprise)


def _listed(caller: Principal, request: ServiceRequest, referral: Referral, status: ReferralStatus | None) -> bool:
    return visible(caller, request, referral) and (status is None or referral.status is status)


def _parse_cursor(cursor: str | None) -> tuple[str | None, int]:
    if cursor is None:
        return None, 0
    request_id, _, position = cursor.partition(".")
    return request_id, int(position or 0)

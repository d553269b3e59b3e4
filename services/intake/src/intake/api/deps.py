"""Request-scoped dependencies: the wired service, its use cases, the caller, and role guards."""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from goglobal_contract.ids import new_id
from goglobal_shared.problems import ProblemError
from intake.api.middleware import AUTHENTICATED
from intake.auth.keys import Principal, Role
from intake.components import Intake
from intake.service_layer.api_keys import ApiKeyAccounts
from intake.service_layer.dead_letters import DeadLetterReplays
from intake.service_layer.deliveries import Redeliveries
from intake.service_layer.enterprises import Enterprises
from intake.service_layer.partners import Partners
from intake.service_layer.referrals import Referrals
from intake.service_layer.submissions import Submissions

T = TypeVar("T")


def get_intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


# Dependencies are `async def` even with nothing to await: FastAPI runs a plain `def` in a worker thread, a hand-off
# per request that costs more than the dependency itself.
async def _intake(request: Request) -> Intake:
    return get_intake(request)


IntakeDep = Annotated[Intake, Depends(_intake)]


# Each use case wired with the stores of this intake: the routes get them as dependencies, the console calls these.
def referrals_of(intake: Intake) -> Referrals:
    return Referrals(intake.requests, intake.enterprises, intake.partners, intake.clock)


def submissions_of(intake: Intake) -> Submissions:
    return Submissions(intake.requests, intake.enterprises, intake.clock)


def enterprises_of(intake: Intake) -> Enterprises:
    return Enterprises(intake.enterprises, intake.api_keys, intake.clock)


def partners_of(intake: Intake) -> Partners:
    settings = intake.settings
    return Partners(
        intake.partners,
        intake.api_keys,
        intake.clock,
        settings.allow_private_webhook_targets,
        settings.webhook_secret_overlap_s,
    )


def api_keys_of(intake: Intake) -> ApiKeyAccounts:
    return ApiKeyAccounts(intake.api_keys, intake.clock)


def redeliveries_of(intake: Intake) -> Redeliveries:
    return Redeliveries(intake.notifications, intake.clock)


def dead_letters_of(intake: Intake) -> DeadLetterReplays:
    return DeadLetterReplays(intake.dead_letters, intake.runtime.connections.producer, intake.clock)


def _wired(use_case: Callable[[Intake], T]) -> Callable[[Intake], Awaitable[T]]:
    async def dependency(intake: IntakeDep) -> T:
        return use_case(intake)

    return dependency


ReferralsDep = Annotated[Referrals, Depends(_wired(referrals_of))]
SubmissionsDep = Annotated[Submissions, Depends(_wired(submissions_of))]
EnterprisesDep = Annotated[Enterprises, Depends(_wired(enterprises_of))]
PartnersDep = Annotated[Partners, Depends(_wired(partners_of))]
ApiKeysDep = Annotated[ApiKeyAccounts, Depends(_wired(api_keys_of))]
RedeliveriesDep = Annotated[Redeliveries, Depends(_wired(redeliveries_of))]
DeadLettersDep = Annotated[DeadLetterReplays, Depends(_wired(dead_letters_of))]


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer gg_...`")


async def get_principal(
    request: Request, intake: IntakeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise ProblemError(
            401,
            "unauthenticated",
            "send an API key as `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    presented = credentials.credentials.strip()
    principal = _authenticated_earlier(request, presented) or await intake.api_keys.authenticate(
        presented, intake.clock()
    )
    if principal is None:
        raise ProblemError(
            401, "unauthenticated", "the API key is unknown, expired or revoked", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def _authenticated_earlier(request: Request, presented: str) -> Principal | None:
    """The principal the idempotency middleware found for this very key within this request."""
    earlier = getattr(request.state, AUTHENTICATED, None)
    if earlier is not None and earlier[0] == presented and isinstance(earlier[1], Principal):
        return earlier[1]
    return None


@dataclass(frozen=True)
class RoleGuard:
    """A dependency that lets only keys of `roles` through (403 for the others); the OpenAPI document reads
    `roles` to describe each operation's 403."""

    roles: tuple[Role, ...]

    @property
    def allowed(self) -> str:
        return " or ".join(r.value for r in self.roles)

    async def __call__(self, principal: PrincipalDep) -> Principal:
        if principal.role not in self.roles:
            raise ProblemError(403, "forbidden", f"this operation is for {self.allowed} keys")
        return principal


def require(*roles: Role) -> RoleGuard:
    return RoleGuard(roles)


EnterpriseDep = Annotated[Principal, Depends(require(Role.ENTERPRISE))]
PartnerDep = Annotated[Principal, Depends(require(Role.PARTNER))]
OperatorDep = Annotated[Principal, Depends(require(Role.OPERATOR))]
EnterpriseOrOperatorDep = Annotated[Principal, Depends(require(Role.ENTERPRISE, Role.OPERATOR))]
PartnerOrOperatorDep = Annotated[Principal, Depends(require(Role.PARTNER, Role.OPERATOR))]


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


async def get_request_id(x_request_id: Annotated[str | None, Header()] = None) -> str:
    """The id that audit entries name as the cause: the caller's `X-Request-Id` if sane, else a new one."""
    return x_request_id if x_request_id and _REQUEST_ID.match(x_request_id) else new_id()


RequestIdDep = Annotated[str, Depends(get_request_id)]

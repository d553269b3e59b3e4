from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import BaseModel

from goglobal_shared.problems import ProblemError, install_problem_handlers
from goglobal_shared.runtime import worker_app
from matching.bootstrap import Matching, bootstrap
from matching.engine import Partner
from matching.settings import MatchingSettings

internal = APIRouter(prefix="/internal", tags=["internal"])


@internal.get("/directory/{partner_id}", response_model=Partner)
async def directory_entry(
    partner_id: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")], request: Request
) -> Partner:
    """This replica's view of a partner (no contact details): what ranking uses right now."""
    matching: Matching = request.app.state.service
    partner = matching.service.directory_entry(partner_id)
    if partner is None:
        raise ProblemError(404, "partner-not-in-directory", f"{partner_id!r} is not in this replica's directory")
    return partner


class PartnerLoad(BaseModel):
    partner_id: str
    name: str
    active: bool
    capacity: int
    open_referrals: int
    offers: int
    accepted: int
    declined: int
    expired: int
    completed: int
    mean_response_hours: float | None
    mean_rating: float | None


@internal.get("/partner-load", response_model=list[PartnerLoad])
async def partner_load(request: Request) -> list[PartnerLoad]:
    """Each partner's load and answering history, for the operator console."""
    matching: Matching = request.app.state.service
    rows = []
    for partner, s in await matching.service.partner_loads():
        rows.append(
            PartnerLoad(
                partner_id=partner.id,
                name=partner.name,
                active=partner.active,
                capacity=partner.capacity,
                open_referrals=s.open_referrals,
                offers=s.offers,
                accepted=s.accepted,
                declined=s.declined,
                expired=s.expired,
                completed=s.completed,
                mean_response_hours=round(s.response_hours_sum / s.responses, 2) if s.responses else None,
                mean_rating=round(s.rating_sum / s.rating_count, 2) if s.rating_count else None,
            )
        )
    return rows


def create_app(settings: MatchingSettings) -> FastAPI:
    app = worker_app("GoGlobal matching", settings, lambda: bootstrap(settings), routers=[internal])
    install_problem_handlers(app)
    return app

from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Request

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
    service: Matching = request.app.state.service
    partner = service.matcher.index.get(partner_id)
    if partner is None:
        raise ProblemError(404, "partner-not-in-directory", f"{partner_id!r} is not in this replica's directory")
    return partner


def create_app(settings: MatchingSettings) -> FastAPI:
    app = worker_app("GoGlobal matching", settings, lambda: bootstrap(settings), routers=[internal])
    install_problem_handlers(app)
    return app

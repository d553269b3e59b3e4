"""The console's pages and form posts. Every answer gets `no-store` and a strict CSP (see `ConsoleRoute`);
every page needs a live session of a still-valid operator key; every form post needs the session's CSRF token."""

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Path, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from goglobal_contract.ids import ID_PATTERN, new_id
from intake.api.deps import dead_letters_of, get_intake, referrals_of
from intake.auth.keys import Role
from intake.components import Intake, Sessions
from intake.console import charts, data
from intake.console.history import History, start_history
from intake.console.pictures import pictures
from intake.console.session import (
    COOKIE,
    COOKIE_PATH,
    LIFETIME,
    ConsoleSession,
    key_still_valid,
)
from intake.service_layer.dead_letters import SENT
from intake.service_layer.errors import Conflict, NotFound, PartnerNotActive

HERE = FilePath(__file__).parent
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    # No inline script or style anywhere: the pages need nothing but their own stylesheet.
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; img-src 'self'; script-src 'none'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class _Interrupt(Exception):
    """Raised by a guard to answer at once (to the login page, or 403)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class ConsoleRoute(APIRoute):
    """Turns guard interruptions into their answer and hardens every console response, errors included."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def hardened(request: Request) -> Response:
            try:
                response = await handler(request)
            except _Interrupt as stop:
                response = stop.response
            response.headers.update(SECURITY_HEADERS)
            return response

        return hardened


@asynccontextmanager
async def _sampling(app: FastAPI) -> AsyncIterator[None]:
    """Starts the lag and backlog history. FastAPI runs an included router's lifespan inside the app's, so intake is
    wired by now; the sampler is one of intake's loops and stops with them."""
    app.state.console_history = start_history(app.state.intake)
    yield


router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute, lifespan=_sampling)
templates = Jinja2Templates(directory=HERE / "templates")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


templates.env.filters["when"] = _when
templates.env.filters["duration"] = _duration
templates.env.filters["number"] = charts.number


@dataclass(frozen=True)
class SignedIn:
    intake: Intake
    store: Sessions
    session: ConsoleSession


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)  # 303: the browser follows a form post with a GET


async def signed_in(request: Request) -> SignedIn:
    intake = get_intake(request)
    store, now = intake.sessions, intake.clock()
    session = await store.get(request.cookies.get(COOKIE), now)
    if session is not None and await key_still_valid(intake.api_keys, session.key_id, now):
        return SignedIn(intake, store, session)
    if session is not None:  # its key was revoked or expired: the session dies with it
        await store.delete(session)
    raise _Interrupt(_redirect("/console/login"))


async def signed_in_form(request: Request, who: Annotated[SignedIn, Depends(signed_in)]) -> SignedIn:
    form = await request.form()
    if not who.session.csrf_matches(form.get("csrf_token")):
        page = templates.TemplateResponse(request, "refused.html", {}, status_code=403)
        raise _Interrupt(page)
    return who


SignedInDep = Annotated[SignedIn, Depends(signed_in)]
SignedInFormDep = Annotated[SignedIn, Depends(signed_in_form)]


@cache
def _stylesheet() -> bytes:
    return (HERE / "static" / "console.css").read_bytes()


@router.get("/static/console.css")
async def stylesheet() -> Response:
    return Response(_stylesheet(), media_type="text/css")


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    try:
        await signed_in(request)
    except _Interrupt:
        return templates.TemplateResponse(request, "login.html", {"error": None})
    return _redirect("/console")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, api_key: Annotated[str, Form(max_length=200)] = "") -> Response:
    intake = get_intake(request)
    principal = await intake.api_keys.authenticate(api_key.strip(), intake.clock())
    if principal is None or principal.role is not Role.OPERATOR:
        # One message for unknown, revoked and non-operator keys; the key itself is never shown back.
        error = "That is not a valid operator API key."
        return templates.TemplateResponse(request, "login.html", {"error": error}, status_code=401)
    token = await intake.sessions.create(principal.key_id, principal.label, intake.clock())
    response = _redirect("/console")
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request, who: SignedInFormDep) -> Response:
    await who.store.delete(who.session)
    response = _redirect("/console/login")
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )
    return response


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, who: SignedInDep) -> Response:
    flash = await who.store.take_flash(who.session)
    board = await data.collect(who.intake, who.intake.clock())
    history: History = request.app.state.console_history
    context = {
        "board": board,
        "flash": flash,
        "session": who.session,
        "lag_rows": data.lag_rows(board.metrics),
        "outbox_rows": data.outbox_rows(board.metrics),
        "charts": pictures(board, history, board.now),
    }
    return templates.TemplateResponse(request, "dashboard.html", context)


@router.post("/referrals/{referral_id}/assign")
async def assign(
    referral_id: Annotated[str, Path(pattern=ID_PATTERN)],
    who: SignedInFormDep,
    partner_id: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    kind, text = await _assign(who, referral_id, partner_id.strip())
    await who.store.set_flash(who.session, kind, text)
    return _redirect("/console#unmatched")


async def _assign(who: SignedIn, referral_id: str, partner_id: str) -> tuple[str, str]:
    """The use case of `POST /v1/referrals/{id}/assign`, its refusals told as the page's message."""
    try:
        await referrals_of(who.intake).assign(who.session.operator, referral_id, partner_id, new_id())
    except PartnerNotActive:
        return "error", f"{partner_id or 'No partner'} is not an active partner; nothing was assigned."
    except NotFound:
        return "error", f"Referral {referral_id} does not exist."
    except Conflict as exc:
        return "error", f"Referral {referral_id} was not assigned: {exc}."
    return "ok", f"Referral {referral_id} assigned to {partner_id}; matching will offer it to them."


@router.post("/dead-letters/{letter_id}/replay")
async def replay_dead_letter(letter_id: Annotated[str, Path(max_length=300)], who: SignedInFormDep) -> Response:
    try:
        result = await dead_letters_of(who.intake).one(letter_id, who.session.principal)
    except NotFound:
        await who.store.set_flash(who.session, "error", f"Dead letter {letter_id} does not exist.")
        return _redirect("/console#dead-letters")
    kind = "ok" if result == SENT else "error"
    await who.store.set_flash(who.session, kind, f"Replay of {letter_id}: {result}.")
    return _redirect("/console#dead-letters")

"""RFC 9457 problem details for every error a service's HTTP API returns."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://goglobal.hk/problems/"


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong, for a program (`type`, `status`) and for a person (`title`, `detail`)."""

    model_config = ConfigDict(extra="allow")  # RFC 9457 extension members, e.g. `errors`

    type: str = Field(
        default="about:blank",
        description=f"identifies the kind of problem: `{PROBLEM_BASE}<slug>`, or `about:blank` for a plain HTTP error",
        examples=[f"{PROBLEM_BASE}not-found"],
    )
    title: str = Field(description="the HTTP status phrase", examples=["Not Found"])
    status: int = Field(ge=100, le=599, description="the HTTP status code", examples=[404])
    detail: str | None = Field(default=None, description="what happened, for a person to read")
    instance: str | None = Field(default=None, description="the path of the request")


class FieldProblem(BaseModel):
    """One reason a request was refused, and where."""

    field: str = Field(
        description="where, dotted: `body.contact.phone`, `query.limit`, `header.Idempotency-Key`; "
        "`body` alone for a body that is not JSON",
        examples=["body.contact.phone"],
    )
    message: str = Field(examples=["'12345' is not in E.164 form: write '+', the country code and the number"])
    type: str = Field(description="a stable code for the rule, e.g. `missing`, `string_too_short`, `json_invalid`")


class ValidationProblem(Problem):
    """422: the request was refused; `errors` lists every reason."""

    errors: list[FieldProblem] = Field(min_length=1)


class ProblemError(Exception):
    """Raised by routes for an error with a documented problem type."""

    def __init__(
        self, status: int, slug: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    request: Request, status: int, detail: str | None, slug: str | None = None, **extra: Any
) -> JSONResponse:
    """`extra` members are added to the problem (`errors=[...]` for a 422, as `ValidationProblem` describes)."""
    body = Problem(
        type=PROBLEM_BASE + slug if slug else "about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        **extra,
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_JSON)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())),
            "message": err.get("msg", ""),
            "type": err.get("type") or "invalid",
        }
        for err in exc.errors()
    ]


def validation_problem(request: Request, errors: list[dict[str, Any]], slug: str = "validation") -> JSONResponse:
    """The 422 every refused input gets (`ValidationProblem`), whatever refused it."""
    fields = ", ".join(str(e["field"]) for e in errors)
    return problem_response(request, 422, f"invalid request: {fields}", slug, errors=errors)


# FastAPI answers a body its JSON parser raised anything but JSONDecodeError on (bytes that are not UTF-8, nesting
# deeper than the parser's recursion limit) with a bare 400; that body is just as malformed as bad JSON is.
_BODY_PARSE_ERROR = "There was an error parsing the body"


def _unreadable_body(exc: StarletteHTTPException) -> str | None:
    """Why FastAPI could not parse the body, when `exc` is its 400 for that."""
    if exc.status_code != 400 or exc.detail != _BODY_PARSE_ERROR:
        return None
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not UTF-8 (byte {cause.start}); JSON bodies must be UTF-8"
    if isinstance(cause, RecursionError):
        return "the body nests JSON arrays or objects too deeply"
    return f"the body cannot be read as JSON: {cause}" if cause is not None else "the body cannot be read as JSON"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(request, _validation_errors(exc))

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError) -> JSONResponse:
        response = problem_response(request, exc.status, exc.detail, exc.slug, **exc.extra)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        unreadable = _unreadable_body(exc)
        if unreadable is not None:
            return validation_problem(request, [{"field": "body", "message": unreadable, "type": "json_invalid"}])
        return problem_response(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "an unexpected error occurred; it has been logged")

"""The one place the service layer's refusals become problem details, and the answers to a request body intake
cannot read.

FastAPI reports malformed JSON as a validation error at `body.<character offset>` and validates a body sent as
`text/plain` (or without a content type) as if it were JSON, refusing it with 422; intake answers both as what they
are: 400 naming the line and column of the syntax error, and 415 naming the content type it expects.
"""

import json
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from goglobal_shared.problems import problem_response, validation_problem
from intake.service_layer.errors import Conflict, InvalidInput, NotFound, ServiceError, UnsupportedFormat

ExceptionHandler = Callable[[Request, Exception], Response | Awaitable[Response]]
MALFORMED_JSON = "malformed-json"
UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
# FastAPI's 400 when its JSON parser raised anything but JSONDecodeError (bytes that are not UTF-8, nesting deeper
# than the parser's recursion limit); the cause is chained to it.
_BODY_PARSE_ERROR = "There was an error parsing the body"


# By the most specific class in the error's MRO: a subclass (PartnerNotActive) answers as its base (Conflict).
STATUS: dict[type[ServiceError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    UnsupportedFormat: 415,
    ServiceError: 400,
}


def install_service_error_handler(app: FastAPI) -> None:
    """Answers every service-layer refusal; routes let them through."""

    async def on_service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        if isinstance(exc, InvalidInput):
            # The use case's input is the request body: its fields are named as every other 422 names them.
            fields = [{"field": f"body.{e.field}", "message": e.message, "type": e.type} for e in exc.errors]
            return validation_problem(request, fields)
        status = next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)
        return problem_response(request, status, str(exc), exc.slug)

    app.add_exception_handler(ServiceError, on_service_error)


def install_body_handlers(app: FastAPI) -> None:
    """Answers a body that is not JSON (415) or not valid JSON (400). Call it after
    `goglobal_shared.problems.install_problem_handlers`: every other error still goes to the handlers it installed."""
    shared_validation = app.exception_handlers[RequestValidationError]
    shared_http = app.exception_handlers[StarletteHTTPException]

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if isinstance(exc.body, bytes):
            # FastAPI parses a body as JSON only when its content type says JSON; it hands the route's JSON model
            # the raw bytes otherwise, which the model refuses.
            return problem_response(request, 415, _not_json(request), UNSUPPORTED_MEDIA_TYPE)
        syntax = _json_syntax_error(exc)
        if syntax is not None:
            return problem_response(request, 400, syntax, MALFORMED_JSON)
        return await _delegate(shared_validation, request, exc)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == _BODY_PARSE_ERROR:
            return problem_response(request, 400, _unreadable(exc.__cause__), MALFORMED_JSON)
        return await _delegate(shared_http, request, exc)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


async def _delegate(handler: ExceptionHandler, request: Request, exc: Exception) -> Response:
    answer = handler(request, exc)
    return answer if isinstance(answer, Response) else await answer


def _not_json(request: Request) -> str:
    declared = request.headers.get("content-type", "").split(";")[0].strip()[:100]
    sent = f"the body was sent as {declared!r}" if declared else "the body was sent without a Content-Type"
    return f"{sent}; this operation takes JSON: send it with Content-Type: application/json"


def _json_syntax_error(exc: RequestValidationError) -> str | None:
    """Where the body stops being JSON, as a person counts (line and column, from 1), when that is the error."""
    cause = exc.__cause__
    if isinstance(cause, json.JSONDecodeError):
        return f"the body is not valid JSON: {cause.msg} at line {cause.lineno}, column {cause.colno}"
    for error in exc.errors():  # should FastAPI stop chaining the cause: its error, at `body.<offset>`
        location = tuple(error.get("loc", ()))
        if error.get("type") == "json_invalid" and len(location) == 2 and location[0] == "body":
            return f"the body is not valid JSON at character {location[1]}"
    return None


def _unreadable(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        where = f"byte {cause.start + 1} cannot be decoded as {cause.encoding} ({cause.reason})"
        return f"the body is not valid JSON: {where}; send UTF-8"
    if isinstance(cause, RecursionError):
        return "the body is not valid JSON here: it nests arrays or objects too deeply to be read"
    return f"the body cannot be read as JSON: {cause}" if cause is not None else "the body cannot be read as JSON"

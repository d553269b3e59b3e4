"""The intake OpenAPI document: FastAPI's, plus what the middleware, the dependencies and the error handlers answer.

FastAPI documents what a route returns; it cannot see that

* every error is an RFC 9457 problem served as `application/problem+json` (goglobal_shared.problems), and every
  422 lists its reasons in `errors` (`ValidationProblem`, not FastAPI's `HTTPValidationError`);
* an operation that takes an API key answers 401 without a valid one, and 403 to a key of another role (`RoleGuard`);
* the middleware answers 413 to an oversized body on any POST/PUT/PATCH, and on POST reads `Idempotency-Key`:
  400 when it is malformed, 409 while its first request runs, 422 when it was used with another request;
* an operation that takes a JSON body answers 400 to malformed JSON and 415 to a body of another content type
  (api/errors.py).

All of that is added here, from the routes' dependencies and the shared models, never per route by hand.

The pages that show the document, Swagger UI at `/docs` and ReDoc at `/redoc`, load their scripts, styles and icon
from intake itself (the pinned `fastapi-offline` package ships them), never from a CDN: they work offline.
"""

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.params import Form
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic.json_schema import models_json_schema
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from goglobal_shared.problems import PROBLEM_JSON, FieldProblem, Problem, ValidationProblem
from intake.api.deps import RoleGuard, get_principal
from intake.api.middleware import IDEMPOTENCY_KEY_PATTERN

REF = "#/components/schemas/{model}"
PROBLEM = {"$ref": REF.format(model=Problem.__name__)}
VALIDATION_PROBLEM = {"$ref": REF.format(model=ValidationProblem.__name__)}
FASTAPI_VALIDATION = {"HTTPValidationError", "ValidationError"}  # FastAPI's 422 body, which intake never sends
WITH_BODY = {"post", "put", "patch"}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes a retried POST safe: same key and body, same answer, nothing created twice. "
    "1-255 visible ASCII characters (no spaces); anything else is refused with 400.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
    "example": "3f1c2b9e-5d4a-4c8e-9b1a-7e6d5c4b3a21",
}
VALIDATION = "The request was refused: `errors` names each field and the rule it broke"
UNAUTHENTICATED = "No API key, or one that is unknown, expired or revoked: send `Authorization: Bearer <key>`"
TOO_LARGE = "The body is larger than the deployment allows (`GOGLOBAL_MAX_BODY_BYTES`, 1 MiB by default)"
BAD_KEY = "The Idempotency-Key is not 1-255 visible ASCII characters"
KEY_IN_USE = "A request with this Idempotency-Key is still being processed: retry later"
KEY_REUSED = "The Idempotency-Key was used with another request (`errors` names `header.Idempotency-Key`)"
MALFORMED_JSON = "The body is not valid JSON: `detail` names the line and column of the first syntax error"
NOT_JSON = "The body is not JSON (no Content-Type, or another one): send it with `Content-Type: application/json`"

DOCS_URL, REDOC_URL, DOCS_ASSETS = "/docs", "/redoc", "/docs/assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon
# The pages load nothing from another origin (ReDoc would fetch its vendor's logo from a CDN); their inline
# bootstrap script and styles stay allowed.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'"
)


def build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})
    _, definitions = models_json_schema(
        [(model, "validation") for model in (Problem, FieldProblem, ValidationProblem)], ref_template=REF
    )
    components.update(definitions["$defs"])
    for dependant, method, operation in _operations(app, schema):
        _describe_errors(dependant, method, operation)
    for path in schema["paths"].values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                _as_problem(status, response)
            operation["responses"] = dict(sorted(operation.get("responses", {}).items()))
    _drop_unused(schema, FASTAPI_VALIDATION)
    return schema


def _operations(app: FastAPI, schema: dict[str, Any]) -> Iterator[tuple[Dependant, str, dict[str, Any]]]:
    """Each documented operation with its route's dependencies (as included, router dependencies too)."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            for method in sorted(route.methods or ()):
                operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    yield route.dependant, method.lower(), operation


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def _add(responses: dict[str, Any], status: int, description: str, **extra: Any) -> None:
    """Documents `status`, or adds `description` to the one the route documents."""
    documented = responses.get(str(status))
    if documented is None:
        responses[str(status)] = {"description": description, **extra}
    elif description not in documented.get("description", ""):
        earlier = documented.get("description")
        documented["description"] = f"{earlier}; or: {description}" if earlier else description
        documented.update(extra)


def _describe_errors(dependant: Dependant, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    dependencies = list(_dependencies(dependant))
    if any(d.call is get_principal for d in dependencies):
        www_authenticate = {"description": "`Bearer`", "schema": {"type": "string"}}
        _add(responses, 401, UNAUTHENTICATED, headers={"WWW-Authenticate": www_authenticate})
    guards = [d.call for d in dependencies if isinstance(d.call, RoleGuard)]
    for guard in guards:
        _add(responses, 403, f"The API key is of another role: this operation is for {guard.allowed} keys")
    if method in WITH_BODY:
        _add(responses, 413, TOO_LARGE)
    if any(not isinstance(body.field_info, Form) for body in dependant.body_params):  # FastAPI reads it as JSON
        _add(responses, 400, MALFORMED_JSON)
        _add(responses, 415, NOT_JSON)
    if "422" in responses:
        responses["422"]["description"] = VALIDATION
    if method == "post":
        parameters = [p for p in operation.get("parameters", []) if p.get("name", "").lower() != "idempotency-key"]
        operation["parameters"] = [*parameters, IDEMPOTENCY_KEY]
        _add(responses, 400, BAD_KEY)
        _add(responses, 409, KEY_IN_USE)
        if "422" not in responses:
            responses["422"] = {"description": KEY_REUSED}
        else:
            _add(responses, 422, KEY_REUSED)


def _as_problem(status: str, response: dict[str, Any]) -> None:
    """Every error is a problem, as the handlers answer it; an error with a body of its own (503 from /readyz,
    a readiness report) keeps it."""
    if not status.isdigit() or int(status) < 400:
        return
    content: dict[str, Any] = response.get("content") or {}
    schemas = [media.get("schema", {}) for media in content.values()]
    refs = {str(s.get("$ref", "")).rsplit("/", 1)[-1] for s in schemas}
    if content and not refs <= {Problem.__name__, ValidationProblem.__name__, *FASTAPI_VALIDATION}:
        return
    problem = VALIDATION_PROBLEM if status == "422" else PROBLEM
    response["content"] = {PROBLEM_JSON: {"schema": problem}}


def _drop_unused(schema: dict[str, Any], names: set[str]) -> None:
    """Drops the schemas of `names` that nothing refers to, until none is left to drop: one may be referred to only
    by another of them (FastAPI's ValidationError by its HTTPValidationError), whatever order a set gives them in."""
    components: dict[str, Any] = schema["components"]["schemas"]
    dropped = True
    while dropped:
        dropped = False
        for name in sorted(names & components.keys()):
            definition = components.pop(name)
            if json.dumps(REF.format(model=name)) in json.dumps(schema):
                components[name] = definition  # still referred to: keep it
            else:
                dropped = True


def serve_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc, with their assets served by intake. Create `app` with `docs_url=None, redoc_url=None`:
    FastAPI's own pages load them from a CDN, and are blank on a machine without internet."""
    app.mount(DOCS_ASSETS, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} (Swagger UI)",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # Swagger UI's online validator is a third party
        )
        page.headers["Content-Security-Policy"] = DOCS_POLICY
        return page

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} (ReDoc)",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = DOCS_POLICY
        return page

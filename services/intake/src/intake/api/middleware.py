"""ASGI middleware: request body size limit (413) and `Idempotency-Key` on POST."""

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from goglobal_shared.problems import problem_response, validation_problem
from intake.adapters.idempotency_repository import Claim, StoredResponse
from intake.components import Idempotency

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # 1-255 visible ASCII characters (the OpenAPI document says so)
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
AUTHENTICATED = "authenticated"  # request.state key: (the API key presented, what it authenticated as)


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay_receive(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class BodyLimitAndIdempotency:
    """Reads each request body once (refusing oversized ones), then, for a POST carrying an
    `Idempotency-Key`, executes it at most once per (caller, key) and replays the stored answer."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        repository: Callable[[], Idempotency],
        clock: Callable[[], datetime],
        authenticate: Callable[[str], Awaitable[object | None]],
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.repository = repository
        self.clock = clock
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        declared = request.headers.get("content-length", "0")
        try:
            if not declared.isdigit() or int(declared) > self.max_body_bytes:
                raise BodyTooLarge
            body = await read_body(receive, self.max_body_bytes)
        except BodyTooLarge:
            detail = f"request body exceeds {self.max_body_bytes} bytes"
            await problem_response(request, 413, detail, "body-too-large")(scope, receive, send)
            return
        key = request.headers.get("idempotency-key")
        if scope["method"] != "POST" or key is None:
            await self.app(scope, replay_receive(body), send)
            return
        await self._idempotent(scope, request, key, body, send)

    async def _idempotent(self, scope: Scope, request: Request, key: str, body: bytes, send: Send) -> None:
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            detail = "Idempotency-Key must be 1-255 visible ASCII characters"
            await problem_response(request, 400, detail, "bad-idempotency-key")(scope, replay_receive(b""), send)
            return
        caller = _caller(request.headers)
        if caller is not None:
            principal = await self.authenticate(caller)
            if principal is None:
                # A revoked or unknown key gets the route's 401, never a stored answer.
                await self.app(scope, replay_receive(body), send)
                return
            scope.setdefault("state", {})[AUTHENTICATED] = (caller, principal)  # the route need not look again
        repo = self.repository()
        record_id, fingerprint = _record_id(request.headers, key), _fingerprint(scope, body)
        if scope["path"] in SELF_IDEMPOTENT:
            # The route finds its own earlier result by the key: no claim and no read first, only the answer
            # written afterwards; a retry is recognised by the route (`EARLIER_RESULT`) and answered from here.
            await self._execute_and_store(scope, body, send, repo, record_id, fingerprint)
            return
        claim, stored = await repo.claim(record_id, fingerprint, self.clock())
        if claim is Claim.NEW:
            await self._execute_and_store(scope, body, send, repo, record_id, None)
        else:
            await _answer_taken(request, scope, send, claim, stored)

    async def _execute_and_store(
        self,
        scope: Scope,
        body: bytes,
        send: Send,
        repo: Idempotency,
        record_id: str,
        unclaimed: str | None,
    ) -> None:
        """Runs the request and stores its answer before sending it, so an immediate retry finds it stored.
        `unclaimed`: the fingerprint of a request run without a claim (nothing to release, the answer is new)."""
        messages: list[Message] = []

        async def hold(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, replay_receive(body), hold)
        except BaseException:
            if unclaimed is None:
                await repo.release(record_id)
            raise
        start = next(m for m in messages if m["type"] == "http.response.start")
        if unclaimed is not None and scope.get("state", {}).get(EARLIER_RESULT):
            claim, stored = await repo.lookup(record_id, unclaimed, self.clock())
            if claim is not Claim.NEW:  # the first try's answer (or, for another body, a refusal) stands
                await _answer_taken(Request(scope), scope, send, claim, stored)
                return
            # No answer stored: the first try is still running, or died after its write. Its result, as the
            # route found it, is the answer.
        if start["status"] >= 500:
            if unclaimed is None:
                await repo.release(record_id)
        else:
            headers = Headers(raw=start["headers"])
            content_type = headers.get("content-type", "")
            answer = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
            stored = StoredResponse(
                start["status"], content_type, _without_secrets(content_type, answer), headers.get("location")
            )
            if unclaimed is None:
                await repo.complete(record_id, stored)
            else:
                await repo.store(record_id, unclaimed, stored, self.clock())
        for message in messages:
            await send(message)


async def _answer_taken(
    request: Request, scope: Scope, send: Send, claim: Claim, stored: StoredResponse | None
) -> None:
    """The answer to a key used before: its stored answer, 409 while its first request runs, 422 for another
    request."""
    if claim is Claim.REPLAY:
        assert stored is not None
        await _send_stored(send, stored)
    elif claim is Claim.IN_PROGRESS:
        detail = "a request with this Idempotency-Key is still being processed"
        await problem_response(request, 409, detail, "idempotency-key-in-use")(scope, replay_receive(b""), send)
    else:
        reused = {
            "field": "header.Idempotency-Key",
            "message": "this Idempotency-Key was used with a different request",
            "type": "idempotency_key_reused",
        }
        answer = validation_problem(request, [reused], "idempotency-key-reused")
        await answer(scope, replay_receive(b""), send)


def _caller(headers: Headers) -> str | None:
    """The API key presented, whatever the case of the scheme; None when anonymous."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _record_id(headers: Headers, key: str) -> str:
    # Keys are per caller: the same key from two API keys never collides.
    caller = _caller(headers) or "anonymous"
    return hashlib.sha256(f"{caller}\x00{key}".encode()).hexdigest()


# Routes that find their own earlier result by the Idempotency-Key (a unique index on the stored request). Such a
# route sets `EARLIER_RESULT` in the request state when it answers with the earlier result instead of a new one.
SELF_IDEMPOTENT = frozenset({"/v1/service-requests"})
EARLIER_RESULT = "idempotency_earlier_result"
SECRET_FIELDS = frozenset({"api_key"})
NOT_STORED = "(shown once in the first answer; not stored)"


def _without_secrets(content_type: str, body: bytes) -> bytes:
    """Stored answers never keep a secret: a replay says it was shown once instead."""
    if "json" not in content_type:
        return body
    try:
        document = json.loads(body)
    except ValueError:
        return body
    redacted = _redact(document)
    if redacted == document:
        return body
    return json.dumps(redacted, ensure_ascii=False, separators=(",", ":")).encode()


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: NOT_STORED if k in SECRET_FIELDS and isinstance(v, str) else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _fingerprint(scope: Scope, body: bytes) -> str:
    target = f"{scope['method']} {scope['path']}?{scope.get('query_string', b'').decode('latin-1')}"
    return hashlib.sha256(target.encode() + b"\x00" + body).hexdigest()


async def _send_stored(send: Send, stored: StoredResponse) -> None:
    headers = [
        (b"content-type", stored.content_type.encode()),
        (b"idempotent-replayed", b"true"),
        (b"content-length", str(len(stored.body)).encode()),
    ]
    if stored.location:
        headers.append((b"location", stored.location.encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})

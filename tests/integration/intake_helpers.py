"""Shared by the intake API tests: what an RFC 9457 problem answer must look like."""

from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "errors"}


def assert_problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    """`answer` is an RFC 9457 problem with `status`, and carries nothing but problem fields."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON), answer.headers
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert set(body) <= PROBLEM_FIELDS, f"a problem must not carry the object: {body}"
    if status == 401:
        assert answer.headers.get("www-authenticate") == "Bearer"
    return body

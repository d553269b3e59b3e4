"""README.md's "A full walk", run as written (bash, curl, python3, the goglobal CLI), twice in a row, against the
three services seeded by deploy/local/seed.py as `make run` seeds them. The services here listen on free ports, in
a namespace of their own on the shared Kafka and nx-27017; the walk finds intake at `$API`, as the banner exports it.

Each step's output is checked against what the README says that role sees."""

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO, TIME_SCALE, Namespace
from tests.world import start_services, stop_services

sys.path.append(str(REPO / "deploy" / "local"))
import seed  # deploy/local/seed.py, what make run seeds with

WALK_DEADLINE_S = 120 * TIME_SCALE


def readme_walk() -> str:
    readme = (REPO / "README.md").read_text("utf-8")
    found = re.search(r"### A full walk\n.*?```bash\n(.*?)```", readme, re.DOTALL)
    assert found, "README.md has no bash block under '### A full walk'"
    return found.group(1)


def json_documents(text: str) -> list[Any]:
    """curl -s prints bodies without a newline between them: decode them one after the other."""
    decoder = json.JSONDecoder()
    documents, position = [], 0
    while (position := len(text) - len(text[position:].lstrip())) < len(text):
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
    return documents


def run_walk(script: str, env: dict[str, str], logs: Callable[[], str]) -> tuple[list[Any], str]:
    try:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=WALK_DEADLINE_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the walk did not finish in {WALK_DEADLINE_S}s:\n{exc.stdout!r}\n{logs()}") from None
    assert done.returncode == 0, f"the walk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{logs()}"
    return json_documents(done.stdout), done.stderr


def check_walk(documents: list[Any], stderr: str) -> str:
    """Each step as the README describes it; returns the request's id."""
    assert len(documents) == 10, json.dumps(documents, indent=1)[:4000]
    request, partner, operator, enterprise, accepted, started, completed, rated, history, unmatched = documents

    # 1. 201: both referrals submitted; the enterprise sees its own names and contact.
    assert [r["status"] for r in request["referrals"]] == ["submitted", "submitted"], request
    legal = request["referrals"][0]
    assert legal["need"]["service_category"] == "legal"
    assert legal["enterprise"]["legal_name_en"] and legal["enterprise"]["contact"]

    # 2. The partner: the offer, the enterprise's sector, size band and province only, no ranking.
    assert partner["id"] == legal["id"] and partner["status"] == "offered", partner
    assert partner["open_offers"] == [seed.DEMO_PARTNER]
    seen = partner["enterprise"]
    assert seen["legal_name_en"] is None and seen["legal_name_zh"] is None and seen["contact"] is None, seen
    assert seen["sector"] and seen["size_band"] and seen["hq_province"]
    assert partner["candidates"] is None
    #    The operator: the ranking, each candidate with its score and reasons.
    assert operator["candidates"], operator
    assert all(c["reasons"] and isinstance(c["score"], float) for c in operator["candidates"])
    assert operator["candidates"][0]["partner_id"] == seed.DEMO_PARTNER
    #    The enterprise: offered, and to whom; no ranking.
    assert enterprise["status"] == "offered" and enterprise["open_offers"] == [seed.DEMO_PARTNER], enterprise
    assert enterprise["candidates"] is None

    # 3. Accepted: the partner now sees the names and (the demo enterprise consented) the contact.
    assert accepted["status"] == "accepted" and accepted["partner_id"] == seed.DEMO_PARTNER, accepted
    assert accepted["enterprise"]["legal_name_en"] and accepted["enterprise"]["contact"], accepted
    assert started["status"] == "in_progress", started
    assert completed["status"] == "completed" and completed["completion"]["outcome"] == "engaged", completed

    # 4. The rating, and the audit trail of every change.
    assert rated["rating"]["score"] == 5, rated
    statuses = [entry["to"] for entry in history]
    for status in ("submitted", "offered", "accepted", "in_progress", "completed"):
        assert status in statuses, history

    # 5. The unmatched queue (a page) and the directory import.
    assert isinstance(unmatched["items"], list), unmatched
    assert "32 of 32 rows imported, 0 rejected" in stderr, stderr
    return str(request["id"])


async def test_the_readme_walk_works_twice_in_a_row(
    namespace: Namespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = readme_walk()
    assert "127.0.0.1:8000" not in script, "the walk must reach intake at $API, not at a fixed address"
    assert "$API/v1/service-requests" in script and "--api-url $API" in script
    assert "Idempotency-Key: first-request" not in script
    services = await start_services(["intake", "matching", "notifications"], namespace, tmp_path)
    try:
        intake = services["intake"].url

        def logs() -> str:
            return "\n".join(f"--- {name} ---\n{service.log_tail(15)}" for name, service in services.items())

        # seed.py writes the first operator key where intake reads it, as it does for make run.
        monkeypatch.setenv("GOGLOBAL_MONGODB_URI", namespace.infra.mongodb_uri)
        monkeypatch.setenv("GOGLOBAL_MONGODB_DATABASE", namespace.database("intake"))
        requests = []
        for _ in range(2):  # a second make run: new keys, the same enterprise, a fresh request
            keys = await seed.seed(intake)
            env = {
                **os.environ,
                "OPERATOR": keys.operator,
                "ENTERPRISE": keys.enterprise,
                "PARTNER": keys.partner,
                "API": intake,  # as the banner exports it
                "GOGLOBAL_API_KEY": "",  # only what the README passes
                "GOGLOBAL_API_URL": "",  # the CLI too finds intake at $API
            }
            documents, stderr = await asyncio.to_thread(run_walk, script, env, logs)
            requests.append(check_walk(documents, stderr))
        assert requests[0] != requests[1], "the second walk must make a new request, not replay the first"
    finally:
        stop_services(services.values())

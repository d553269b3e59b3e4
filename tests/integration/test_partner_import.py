"""Bulk partner import through the API and through `goglobal partners import`, against a running intake."""

import asyncio
import sys
from pathlib import Path

import httpx

from tests import factories
from tests.support import REPO, Namespace, ServiceProcess
from tests.world import bearer

FIXTURES = REPO / "tests/unit/fixtures"


async def test_api_and_cli_import_good_rows_and_report_bad_ones(namespace: Namespace, tmp_path: Path) -> None:
    intake = ServiceProcess("intake", namespace, tmp_path).start()
    try:
        await intake.wait_ready()
        operator = await factories.operator_key(namespace)
        async with httpx.AsyncClient(base_url=intake.url, timeout=30, headers=bearer(operator)) as http:
            csv = (FIXTURES / "partners.csv").read_bytes()
            answer = await http.post("/v1/partners/import", content=csv, headers={"content-type": "text/csv"})
            assert answer.status_code == 200, answer.text
            report = answer.json()
            assert (report["created"], report["updated"], report["failed"]) == (2, 0, 2)
            assert {(e["line"], e["field"]) for e in report["errors"]} >= {(3, "markets"), (3, "contact_email")}
            assert (await http.get("/v1/partners/broken-one")).status_code == 404  # a bad row writes nothing
            assert (await http.get("/v1/partners/lion-rock")).json()["profile"]["active"] is False

            again = await http.post("/v1/partners/import", content=csv, headers={"content-type": "text/csv"})
            assert (again.json()["created"], again.json()["updated"]) == (0, 2)
            assert (await http.get("/v1/partners/lion-rock")).json()["version"] == 2

            unknown = await http.post("/v1/partners/import", content=b"x", headers={"content-type": "text/plain"})
            assert unknown.status_code == 415

        cli = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "goglobal"),
            "partners",
            "import",
            str(FIXTURES / "hsds_organizations.json"),
            "--api-url",
            intake.url,
            "--api-key",
            operator,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(cli.communicate(), timeout=60)
        output = err.decode()
        async with httpx.AsyncClient(base_url=intake.url, timeout=30, headers=bearer(operator)) as http:
            listed = (await http.get("/v1/partners", params={"limit": 200})).json()["items"]
        assert {p["id"] for p in listed} == {"harbour-legal", "lion-rock", "7f3c2a9e-hk-legal", "org-2"}, output
        assert "2 of 3 rows imported, 1 rejected" in output
        assert cli.returncode == 1, "a rejected row makes the import exit non-zero"
    finally:
        intake.kill()

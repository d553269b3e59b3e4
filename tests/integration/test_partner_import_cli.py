"""`goglobal partners import` against a real intake: rule text printed literally, bad rows reported with their
line and field (from the file or from the API), the first refused key stops the import."""

import asyncio
import re
from pathlib import Path

import httpx
from typer.testing import CliRunner, Result

from intake.cli import EXIT_REFUSED_KEY, app
from tests import factories
from tests.support import Namespace, ServiceProcess
from tests.world import bearer

HEADER = "id,name,categories,markets,languages,capacity,contact_name,contact_email,contact_phone,webhook_url\n"
GOOD = "{id},Good {id} Ltd,legal,AE,en,5,Wong Siu Ming,desk@{id}.example.hk,+85221234567,\n"
PARTNER_ID_RULE = "^[a-z0-9][a-z0-9-]{1,62}$"


def flat(text: str) -> str:
    """The output without whitespace and table borders, so a message the table wrapped reads as one string."""
    return re.sub(r"[\s│┃║|]+", "", text)


async def goglobal(*args: str) -> Result:
    """Runs the CLI in a thread: it drives its own event loop, which must not be this test's."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env={"GOGLOBAL_API_KEY": None})


async def refused_puts(http: httpx.AsyncClient, status: int) -> float:
    """How many partner PUTs intake answered with `status`, from its own /metrics."""
    metrics = (await http.get("/metrics")).text
    labels = f'method="PUT",route="/v1/partners/{{partner_id}}",status="{status}"'
    found = re.search(re.escape(f"goglobal_http_requests_total{{{labels}}}") + r" (\S+)", metrics)
    return float(found.group(1)) if found else 0.0


async def test_rules_and_data_are_printed_literally_and_good_rows_imported(
    namespace: Namespace, tmp_path: Path
) -> None:
    # Intake refuses private webhook targets here, so one row that the file's own checks accept is refused by
    # the API, and its rule must reach the report too.
    intake = ServiceProcess("intake", namespace, tmp_path, {"GOGLOBAL_ALLOW_PRIVATE_WEBHOOK_TARGETS": "false"})
    intake.start()
    try:
        await intake.wait_ready()
        operator = await factories.operator_key(namespace)
        rows = tmp_path / "partners.csv"
        rows.write_text(
            HEADER
            + GOOD.format(id="cli-good")
            + "Bad_ID!,Bad Ltd,legal,AE,en,5,Wong Siu Ming,desk@bad.example.hk,+85221234567,\n"
            + "cli-markup,Markup Ltd,legal,AE,en,5,[bold]Wong[/bold],[red]x[/red],+85221234567,\n"
            + "cli-private,Private Ltd,legal,AE,en,5,Wong Siu Ming,desk@p.example.hk,+85221234567,https://[fd00::1]/hook\n"
        )
        result = await goglobal("partners", "import", str(rows), "--api-url", intake.url, "--api-key", operator)
        output = result.output
        assert result.exit_code == 1, output
        assert "1 of 4 rows imported, 3 rejected" in output
        # Rich would have read `[a-z0-9]` and `[red]` as markup and printed `'^{1,62}$'` and `'x'`.
        assert PARTNER_ID_RULE in output, output
        assert "(got 'Bad_ID!')" in output
        assert flat("(got '[red]x[/red]')") in flat(output), output
        assert flat("delivery.webhook_url") in flat(output) and flat("fd00::1 is not a public address") in flat(
            output
        ), output
        assert "Traceback" not in output
        async with httpx.AsyncClient(base_url=intake.url, timeout=30, headers=bearer(operator)) as http:
            assert (await http.get("/v1/partners/cli-good")).status_code == 200
            for refused in ("cli-markup", "cli-private"):
                assert (await http.get(f"/v1/partners/{refused}")).status_code == 404
    finally:
        intake.kill()


async def test_a_refused_key_stops_the_import_at_the_first_row(namespace: Namespace, tmp_path: Path) -> None:
    intake = ServiceProcess("intake", namespace, tmp_path).start()
    try:
        await intake.wait_ready()
        operator = await factories.operator_key(namespace)
        rows = tmp_path / "partners.csv"
        rows.write_text(HEADER + "".join(GOOD.format(id=f"cli-row-{n}") for n in range(5)))
        async with httpx.AsyncClient(base_url=intake.url, timeout=30, headers=bearer(operator)) as http:
            owner = {k: v for k, v in factories.partner("cli-owner", ["legal"], ["AE"]).items() if k != "id"}
            answer = await http.put("/v1/partners/cli-owner", json=owner)
            assert answer.status_code == 201, answer.text
            answer = await http.post("/v1/partners/cli-owner/api-keys", json={"name": "not an operator"})
            assert answer.status_code == 201, answer.text
            partner_key = answer.json()["api_key"]

            for key, status in (("gg_not-a-key", 401), (partner_key, 403)):
                before = await refused_puts(http, status)
                result = await goglobal("partners", "import", str(rows), "--api-url", intake.url, "--api-key", key)
                output = result.output
                assert result.exit_code == EXIT_REFUSED_KEY, output
                assert output.count("refused the key") == 1, output
                assert f"HTTP {status}" in output and "--api-key" in output and "GOGLOBAL_API_KEY" in output
                assert "0 of 5 rows imported before it" in output, output
                assert "rejected" not in output, "no per-row report after a refused key"
                # One request reached intake, not one per row.
                assert await refused_puts(http, status) == before + 1
            listed = (await http.get("/v1/partners", params={"limit": 200})).json()["items"]
            assert {p["id"] for p in listed} == {"cli-owner"}
    finally:
        intake.kill()

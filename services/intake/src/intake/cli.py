"""`goglobal`: the operators' command line.

goglobal operators create-key NAME      the first operator key, written straight to the database
goglobal partners import FILE           bulk import through the API, with progress and a per-row report

Exit codes: 0 done; 1 a row or a dead letter was refused; 2 a bad command line; 69 (EX_UNAVAILABLE) the API
could not be reached; 77 (EX_NOPERM) the API refused the key (401/403: nothing more is sent after the first).
Text that comes from a file or from the API is printed literally, never read as Rich markup.
"""

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from goglobal_shared.mongo import make_client
from goglobal_shared.settings import ServiceSettings
from intake.adapters.api_key_repository import ApiKeyRepository
from intake.auth.keys import Role
from intake.domain.partner_import import ImportRow, detect_format, parse_partners

app = typer.Typer(help="GoGlobal Referral Network operations", no_args_is_help=True)
operators = typer.Typer(help="operator keys", no_args_is_help=True)
partners = typer.Typer(help="the partner directory", no_args_is_help=True)
dlq = typer.Typer(help="dead letters: list, show, replay", no_args_is_help=True)
app.add_typer(operators, name="operators")
app.add_typer(partners, name="partners")
app.add_typer(dlq, name="dlq")

ApiUrl = Annotated[str, typer.Option(envvar="GOGLOBAL_API_URL")]
ApiKey = Annotated[str, typer.Option(envvar="GOGLOBAL_API_KEY", help="an operator key")]
console = Console(stderr=True)
EXIT_UNREACHABLE = 69  # sysexits EX_UNAVAILABLE
EXIT_REFUSED_KEY = 77  # sysexits EX_NOPERM


class Unreachable(Exception):
    """The API at `url` could not be reached (refused, timed out, not a URL)."""

    def __init__(self, url: str, cause: Exception) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause


class KeyRefused(Exception):
    """The API answered 401 or 403: every further request with this key would be refused too."""

    def __init__(self, answer: httpx.Response) -> None:
        super().__init__(f"HTTP {answer.status_code}")
        self.status = answer.status_code
        self.detail = _problem(answer)


def _unreachable(url: str, cause: Exception, stopped: str = "") -> typer.Exit:
    reason = str(cause) or type(cause).__name__
    console.print(
        f"[red]could not reach the API at {escape(url)}[/red] ({escape(reason)}){stopped}; "
        "is intake running there? Set the address with --api-url or GOGLOBAL_API_URL.",
        soft_wrap=True,
    )
    return typer.Exit(code=EXIT_UNREACHABLE)


def _refused(status: int, detail: str, url: str, stopped: str = "") -> typer.Exit:
    console.print(
        f"[red]the API at {escape(url)} refused the key[/red] (HTTP {status}: {escape(detail)}){stopped}; "
        "pass an operator key with --api-key or GOGLOBAL_API_KEY.",
        soft_wrap=True,
    )
    return typer.Exit(code=EXIT_REFUSED_KEY)


@operators.command("create-key")
def create_operator_key(name: Annotated[str, typer.Argument(help="who the key is for")]) -> None:
    """Creates an operator key in the intake database (GOGLOBAL_MONGODB_URI) and prints it once."""

    async def create() -> str:
        settings = ServiceSettings(service_name="intake")  # only the database is needed here
        client = make_client(settings.mongodb_uri)
        try:
            keys = ApiKeyRepository(client[settings.database]["api_keys"])
            key = await keys.create(Role.OPERATOR, name, "created with the CLI", datetime.now(UTC))
            return key.plaintext
        finally:
            await client.close()

    plaintext = asyncio.run(create())
    console.print(f"operator key for {escape(name)} (shown once; store it in a secret manager):")
    print(plaintext)


@partners.command("import")
def import_partners(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    api_url: Annotated[str, typer.Option(envvar="GOGLOBAL_API_URL")] = "http://127.0.0.1:8000",
    api_key: Annotated[str, typer.Option(envvar="GOGLOBAL_API_KEY", help="an operator key")] = "",
    fmt: Annotated[Literal["csv", "json", "hsds"] | None, typer.Option("--format")] = None,
) -> None:
    """Creates or replaces every good row; reports each bad row with its line and field."""
    if not api_key:
        raise typer.BadParameter("an operator key is needed: --api-key or GOGLOBAL_API_KEY")
    data = file.read_bytes()
    try:
        kind = detect_format(file.name, None, data, declared=fmt)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    rows = list(parse_partners(data, kind))
    url = api_url.rstrip("/")
    imported: list[int] = []
    try:
        failures = asyncio.run(_send(rows, url, api_key, imported))
    except Unreachable as exc:
        stopped = f"; {len(imported)} of {len(rows)} rows imported before it" if imported else ""
        raise _unreachable(exc.url, exc.cause, stopped) from None
    except KeyRefused as exc:
        stopped = f"; stopped there: {len(imported)} of {len(rows)} rows imported before it"
        raise _refused(exc.status, exc.detail, url, stopped) from None
    _report(len(rows), failures)
    raise typer.Exit(code=1 if failures else 0)


async def _send(rows: list[ImportRow], api_url: str, api_key: str, imported: list[int]) -> list[tuple[int, str, str]]:
    """PUTs every good row; `imported` collects the lines the API took. Raises KeyRefused at the first 401/403
    (every later row would be refused the same way) and Unreachable when the API cannot be reached."""
    failures = [(row.line, e.field, e.message) for row in rows for e in row.errors]
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as client:
            with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
                task = progress.add_task("importing partners", total=len(rows))
                for row in rows:
                    if row.partner is not None:
                        body = row.partner.model_dump(mode="json", exclude={"id"})
                        answer = await client.put(f"/v1/partners/{row.partner.id}", json=body)
                        if answer.status_code in (401, 403):
                            raise KeyRefused(answer)
                        if answer.status_code >= 300:
                            failures.extend((row.line, field, message) for field, message in _row_problems(answer))
                        else:
                            imported.append(row.line)
                    progress.advance(task)
    except (httpx.TransportError, httpx.InvalidURL) as exc:
        raise Unreachable(api_url, exc) from exc
    return sorted(failures)


def _problem(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return f"HTTP {answer.status_code}"
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])
    return f"HTTP {answer.status_code}: {answer.text[:200]}"


def _row_problems(answer: httpx.Response) -> list[tuple[str, str]]:
    """What the API refused in one row: each field of a validation problem with its rule, or the problem's
    detail."""
    try:
        errors = answer.json().get("errors")
    except (ValueError, AttributeError):
        errors = None
    found = [
        (str(error.get("field", "-")).removeprefix("body."), str(error.get("message", "")))
        for error in errors or []
        if isinstance(error, dict)
    ]
    return found or [("-", _problem(answer))]


def _report(total: int, failures: list[tuple[int, str, str]]) -> None:
    bad_lines = {line for line, _, _ in failures}
    console.print(f"{total - len(bad_lines)} of {total} rows imported, {len(bad_lines)} rejected")
    if failures:
        table = Table("line", "field", "problem")
        for line, field, message in failures:  # Text: a rule such as `^[a-z0-9]...$` is printed as it is
            table.add_row(str(line), Text(field), Text(message))
        console.print(table)


def _api(api_url: str, api_key: str) -> httpx.Client:
    if not api_key:
        raise typer.BadParameter("an operator key is needed: --api-key or GOGLOBAL_API_KEY")
    return httpx.Client(base_url=api_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=60)


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """One request of the dead-letter commands: its JSON body, or one line and a non-zero exit."""
    try:
        answer = client.request(method, path, **kwargs)
    except (httpx.TransportError, httpx.InvalidURL) as exc:
        raise _unreachable(str(client.base_url).rstrip("/"), exc) from None
    if answer.status_code in (401, 403):
        raise _refused(answer.status_code, _problem(answer), str(client.base_url).rstrip("/"))
    if answer.is_error:
        console.print(f"[red]{answer.status_code}[/red] {escape(_problem(answer))}", soft_wrap=True)
        raise typer.Exit(code=1)
    return answer.json()


@dlq.command("list")
def dlq_list(
    api_url: ApiUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = "",
    topic: str | None = None,
    status: Annotated[str, typer.Option(help="open, replayed or all")] = "open",
    since: datetime | None = None,
    limit: int = 100,
) -> None:
    """Dead letters, newest first."""
    params: dict[str, Any] = {"limit": limit, "topic": topic, "since": since.isoformat() if since else None}
    if status != "all":
        params["status"] = status
    with _api(api_url, api_key) as client:
        letters = _call(client, "GET", "/v1/dead-letters", params={k: v for k, v in params.items() if v})
    table = Table("type", "error", "when", "status")
    table.add_column("id", no_wrap=True)  # ids are what `show` and `replay` take: never broken
    for letter in letters:
        error = f"{letter['error_class']}: {letter['error_message'][:80]}"
        cells = (letter["event_type"] or "-", error, letter["dead_lettered_at"], letter["status"], letter["id"])
        table.add_row(*(Text(str(cell)) for cell in cells))
    Console(width=None if sys.stdout.isatty() else 240).print(table)


@dlq.command("show")
def dlq_show(letter_id: str, api_url: ApiUrl = "http://127.0.0.1:8000", api_key: ApiKey = "") -> None:
    """One dead letter in full: headers, key, value, error and replays."""
    with _api(api_url, api_key) as client:
        letter = _call(client, "GET", f"/v1/dead-letters/{letter_id}")
    print(json.dumps(letter, indent=2, ensure_ascii=False))


@dlq.command("replay")
def dlq_replay(
    letter_id: Annotated[str | None, typer.Argument(help="one letter; omit to use the filters")] = None,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = "",
    topic: str | None = None,
    error_class: str | None = None,
    since: datetime | None = None,
) -> None:
    """Sends dead letters back to their topics: one by id, or every open one matching the filters."""
    with _api(api_url, api_key) as client:
        if letter_id:
            result = _call(client, "POST", f"/v1/dead-letters/{letter_id}/replay")
        else:
            body = {"topic": topic, "error_class": error_class, "since": since.isoformat() if since else None}
            result = _call(client, "POST", "/v1/dead-letters/replay", json=body)
    for replayed_id, outcome in result["results"].items():
        console.print(Text(f"{replayed_id}: {outcome}"))
    console.print(f"{result['replayed']} replayed")
    raise typer.Exit(code=0 if result["replayed"] == len(result["results"]) else 1)


def main() -> None:
    os.environ.setdefault("GOGLOBAL_LOG_LEVEL", "WARNING")
    app()

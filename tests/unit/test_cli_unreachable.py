"""`goglobal` against an API it cannot reach: one line naming the URL and the option that sets it, no
traceback, a non-zero exit. The API is a closed port on this machine."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from intake.cli import EXIT_UNREACHABLE, app
from tests.support import REPO, free_port

PARTNERS = REPO / "tests/unit/fixtures/partners.csv"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"GOGLOBAL_API_URL": None, "GOGLOBAL_API_KEY": None})
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "command",
    [
        ["partners", "import", str(PARTNERS)],
        ["dlq", "list"],
        ["dlq", "replay", "some-letter"],
    ],
)
def test_a_closed_port_is_one_line_with_the_url(command: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: the connection is refused
    code, output = run(*command, "--api-url", url, "--api-key", "gg_any")
    assert code == EXIT_UNREACHABLE, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert f"could not reach the API at {url}" in lines[0]
    assert "--api-url" in lines[0] and "GOGLOBAL_API_URL" in lines[0]
    assert "Traceback" not in output


def test_a_url_without_a_scheme_is_named_too(tmp_path: Path) -> None:
    code, output = run("partners", "import", str(PARTNERS), "--api-url", "127.0.0.1:8000", "--api-key", "gg_any")
    assert code == EXIT_UNREACHABLE, output
    assert "could not reach the API at 127.0.0.1:8000" in output
    assert "Traceback" not in output


def test_local_errors_print_rule_text_literally_before_anything_is_sent(tmp_path: Path) -> None:
    """Rows the file's own checks refuse are reported before the API is tried; the rule is not Rich markup."""
    rows = tmp_path / "bad.csv"
    rows.write_text(
        "id,name,categories,markets,languages,capacity,contact_name,contact_email,contact_phone\n"
        "Bad_ID!,Bad Ltd,legal,AE,en,5,Wong Siu Ming,desk@bad.example.hk,+85221234567\n"
    )
    closed = f"http://127.0.0.1:{free_port()}"
    code, output = run("partners", "import", str(rows), "--api-url", closed, "--api-key", "k")
    assert code == 1, output
    assert "^[a-z0-9][a-z0-9-]{1,62}$" in output
    assert "0 of 1 rows imported, 1 rejected" in output

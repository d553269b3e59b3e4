"""docs/domain.md's "Webhook URLs" section says what a partner's webhook URL may be; this holds it to what intake
does. The section once promised plain http to `localhost` / `127.0.0.1` while both were refused (issue 12)."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from goglobal_shared.webhook_targets import webhook_url_problem
from intake.domain.inputs.partner import DeliverySettings

DOMAIN = Path(__file__).resolve().parents[2] / "docs" / "domain.md"

# One URL breaking each documented rule (the delivery-time rule is notifications' and has its own tests).
BREAKS = {
    "longer than 2048 characters": "https://hooks.example.com/" + "a" * 2048,
    "webhook_url contains whitespace or control characters": "https://hooks.example.com/a b",
    "webhook_url must use https (plain http is accepted only for localhost and 127.0.0.1)": "http://hooks.example.hk/x",
    "must not carry credentials (user:password@)": "https://user:secret@hooks.example.com/x",
    "localhost is this machine; webhooks go to public hosts": "https://localhost/x",
    "127.0.0.1 is not a public address": "https://2130706433/x",
}


def webhook_section() -> str:
    text = DOMAIN.read_text("utf-8")
    start = text.index("## Webhook URLs")
    return text[start : text.index("\n## ", start + 1)]


def documented_refusals() -> list[str]:
    """The backticked messages of the table's "refused with" column, split where a cell names several."""
    cells = [row.rsplit("|", 2)[1] for row in webhook_section().splitlines() if row.startswith("| ")]
    messages = [m for cell in cells[1:] for m in re.findall(r"`([^`]+)`", cell)]
    return [m for m in messages if "<" not in m]  # `<host> resolves to …` is filled in at delivery


def refusal(url: str, allow_private: bool) -> str | None:
    """What intake answers for `url`: the input model's rules, then the target rules, as a partner is created."""
    try:
        parsed = DeliverySettings(webhook_url=url).webhook_url  # pydantic parses the text
    except ValidationError as error:
        return "; ".join(str(e["msg"]) for e in error.errors())
    return webhook_url_problem(str(parsed), allow_private)


def test_the_section_lists_the_refusals_it_must() -> None:
    assert sorted(documented_refusals()) == sorted(BREAKS), "update BREAKS with one URL per documented rule"


@pytest.mark.parametrize("message", sorted(BREAKS))
def test_each_documented_refusal_is_what_intake_answers(message: str) -> None:
    answer = refusal(BREAKS[message], allow_private=False)
    assert answer is not None and message in answer, answer


@pytest.mark.parametrize("url", ["http://localhost:8080/hooks", "http://127.0.0.1:8080/hooks"])
def test_local_http_targets_work_exactly_when_private_targets_are_allowed(url: str) -> None:
    section = webhook_section()
    assert "GOGLOBAL_ALLOW_PRIVATE_WEBHOOK_TARGETS=true" in section and url.rsplit(":", 1)[0] + ":8080/..." in section
    assert refusal(url, allow_private=False) is not None
    assert refusal(url, allow_private=True) is None


@pytest.mark.parametrize("host", ["127.1", "2130706433", "[::ffff:127.0.0.1]"])
def test_loopback_however_written_is_refused(host: str) -> None:
    assert host.strip("[]") in webhook_section()
    answer = refusal(f"https://{host}/hooks", allow_private=False)
    assert answer is not None and "is not a public address" in answer, answer


def test_plain_http_elsewhere_stays_refused_when_private_targets_are_allowed() -> None:
    assert "`http` to any other host stays refused" in webhook_section()
    assert refusal("http://10.0.0.8/hooks", allow_private=True) is not None

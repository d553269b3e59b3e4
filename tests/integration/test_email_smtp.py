# ruff: noqa: RUF001 -- Chinese text uses full-width punctuation on purpose
"""`notifications.email.smtp.send` against a real SMTP server (aiosmtpd, in a thread, on a free local port).

No Kafka or database: the servers here are started by the tests themselves and always stopped.
"""

import asyncio
import email
import email.policy
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from notifications.email import (
    PermanentEmailError,
    SmtpConfig,
    TransientEmailError,
    build_message,
    render,
    send,
)
from tests.support import free_port

SENDER = "no-reply@goglobal.hk"
TO = "intake@wongpartners.example.hk"
PASSWORD = "Sup3r-Secret-Mailer-Passw0rd"
RID = "0000018f2a0b3c4d5e6f708192a3b4c5"
OFFERED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RESPOND_BY = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)

OFFER = {
    "portal_url": "https://portal.goglobal.hk",
    "referral_id": RID,
    "need": {
        "service_category": "legal",
        "target_markets": ["AE", "SA"],
        "description": "在迪拜設立貿易附屬公司，並在利雅得設立分行。",
        "urgency": "high",
        "budget_band": "from_50k_to_200k_usd",
        "languages": ["zh-Hant", "en"],
    },
    "enterprise": {"sector": "C27", "size_band": "medium", "hq_province": "Guangdong", "preferred_languages": []},
    "offered_at": OFFERED,
    "respond_by": RESPOND_BY,
}


class Recorder:
    """Accepts every message and keeps its envelope."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 2.0.0 OK: queued"


class Refuser:
    """Answers `reply` at one step of the transaction (MAIL, RCPT or DATA) and 250 at the others."""

    def __init__(self, step: str, reply: str) -> None:
        self.step = step
        self.reply = reply

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.step == "MAIL":
            return self.reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.step == "RCPT":
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.reply if self.step == "DATA" else "250 OK"


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and auth_data == (b"mailer", PASSWORD.encode())
    return AuthResult(success=good, handled=False)


@contextmanager
def smtp_server(handler: object, **smtp_options: Any) -> Iterator[Controller]:
    """A real SMTP server in its own thread; stopped however the test ends."""
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), server_hostname="mx.test.goglobal.hk", **smtp_options
    )
    controller.start()  # returns once the server answers
    try:
        yield controller
    finally:
        controller.stop()


Serve = Callable[..., SmtpConfig]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Starts SMTP servers for the test (`serve(handler, **smtp_options)` gives the config to reach one)."""
    with ExitStack() as servers:

        def start(
            handler: object, username: str | None = None, password: str | None = None, **options: Any
        ) -> SmtpConfig:
            controller = servers.enter_context(smtp_server(handler, **options))
            return SmtpConfig(
                host="127.0.0.1",
                port=controller.port,
                sender=f"GoGlobal 出海轉介網絡 <{SENDER}>",
                username=username,
                password=password,
                timeout_s=5.0,
            )

        yield start


def parsed(envelope: Envelope) -> EmailMessage:
    assert isinstance(envelope.content, bytes)
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def offer_message(config: SmtpConfig, message_id: str = "notif-0000018f2a0b") -> tuple[EmailMessage, str, str]:
    mail = render("referral_offered", "zh-Hant", OFFER)
    return build_message(config, TO, mail, message_id, "zh-Hant"), mail.subject, mail.text


async def test_a_traditional_chinese_mail_arrives_whole(serve: Serve) -> None:
    recorder = Recorder()
    config = serve(recorder)
    message, subject, text = offer_message(config)

    await send(config, message)

    assert len(recorder.envelopes) == 1
    envelope = recorder.envelopes[0]
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == [TO]
    assert isinstance(envelope.content, bytes)
    envelope.content.decode("ascii")  # 7-bit clean on the wire
    received = parsed(envelope)
    assert received.get_content_type() == "multipart/alternative"
    parts = list(received.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in parts)
    plain, html = parts
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert plain.get_content().replace("\r\n", "\n") == text
    assert "轉介" in plain.get_content() and "2026-03-04 09:30 UTC" in plain.get_content()
    assert "<!DOCTYPE html>" in html.get_content() and "在迪拜設立貿易附屬公司" in html.get_content()
    assert received["Subject"] == subject
    assert subject.startswith("新轉介邀請")
    assert received["Message-ID"] == "<notif-0000018f2a0b@goglobal.hk>"
    assert received["Content-Language"] == "zh-Hant"
    assert received["From"].addresses[0].addr_spec == SENDER
    assert received["From"].addresses[0].display_name == "GoGlobal 出海轉介網絡"
    assert received["To"] == TO
    assert received["Date"] is not None


async def test_a_retry_sends_the_same_message_id(serve: Serve) -> None:
    recorder = Recorder()
    config = serve(recorder)

    for _ in range(2):
        message, _, _ = offer_message(config, message_id="notif-retried")
        await send(config, message)

    ids = [parsed(envelope)["Message-ID"] for envelope in recorder.envelopes]
    assert ids == ["<notif-retried@goglobal.hk>"] * 2


async def test_login_with_username_and_password(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    config = serve(recorder, "mailer", PASSWORD, authenticator=authenticator, auth_require_tls=False)
    message, _, _ = offer_message(config)

    await send(config, message)

    assert len(recorder.envelopes) == 1
    assert PASSWORD not in caplog.text


async def test_a_wrong_password_is_permanent_and_never_shown(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = PASSWORD + "-old"
    config = serve(Recorder(), "mailer", wrong, authenticator=authenticator, auth_require_tls=False)
    message, _, _ = offer_message(config)

    with pytest.raises(PermanentEmailError) as caught:
        await send(config, message)

    assert caught.value.code == 535
    for shown in (str(caught.value), repr(caught.value), str(caught.value.__cause__), repr(config), caplog.text):
        assert wrong not in shown


@pytest.mark.parametrize(
    ("step", "reply", "error", "code"),
    [
        (
            "RCPT",
            "550 5.1.1 <intake@wongpartners.example.hk>: Recipient address rejected: User unknown",
            PermanentEmailError,
            550,
        ),
        ("RCPT", "451 4.7.1 Greylisted, please try again later", TransientEmailError, 451),
        ("MAIL", "553 5.7.1 Sender address rejected: not owned by user", PermanentEmailError, 553),
        ("DATA", "451 4.3.0 Temporary local problem, please try again", TransientEmailError, 451),
        ("DATA", "554 5.7.1 Message rejected as spam", PermanentEmailError, 554),
    ],
)
async def test_replies_decide_whether_to_retry(
    serve: Serve, step: str, reply: str, error: type[Exception], code: int
) -> None:
    config = serve(Refuser(step, reply))
    message, _, _ = offer_message(config)

    with pytest.raises(error) as caught:
        await send(config, message)

    assert isinstance(caught.value, PermanentEmailError | TransientEmailError)
    assert caught.value.code == code
    assert str(code) in str(caught.value)
    assert caught.value.__cause__ is not None  # the original aiosmtplib error, chained


async def test_nobody_listening_is_transient() -> None:
    config = SmtpConfig(host="127.0.0.1", port=free_port(), sender=SENDER, timeout_s=5.0)
    message, _, _ = offer_message(config)

    with pytest.raises(TransientEmailError) as caught:
        await send(config, message)

    assert caught.value.code is None
    assert caught.value.__cause__ is not None


@contextmanager
def tcp_server_guard(server: asyncio.Server) -> Iterator[asyncio.Server]:
    try:
        yield server
    finally:
        server.close()


async def test_a_server_that_hangs_up_is_transient() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    with tcp_server_guard(server):
        port = server.sockets[0].getsockname()[1]
        config = SmtpConfig(host="127.0.0.1", port=port, sender=SENDER, timeout_s=5.0)
        message, _, _ = offer_message(config)

        with pytest.raises(TransientEmailError):
            await send(config, message)
    await server.wait_closed()


async def test_a_server_that_never_greets_is_transient() -> None:
    greeted = asyncio.Event()

    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greeted.wait()
        writer.close()

    server = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    with tcp_server_guard(server):
        port = server.sockets[0].getsockname()[1]
        config = SmtpConfig(host="127.0.0.1", port=port, sender=SENDER, timeout_s=0.3)
        message, _, _ = offer_message(config)

        with pytest.raises(TransientEmailError) as caught:
            await send(config, message)
        greeted.set()

    assert "timed out" in str(caught.value).lower() or "timeout" in str(caught.value).lower()
    await server.wait_closed()

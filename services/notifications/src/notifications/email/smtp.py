"""Builds the MIME message of a rendered e-mail and hands it to an SMTP server.

`send` sorts every failure into two kinds the caller can act on: `PermanentEmailError` (the server refused the
message for good with a 5xx reply: retrying cannot help) and `TransientEmailError` (a 4xx reply, or the server
could not be reached, timed out or hung up: try again later). The password never appears in a log line, an
exception message or the configuration's repr.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from notifications.email.render import RenderedEmail
from notifications.errors import EmailError, PermanentEmailError, TransientEmailError

log = logging.getLogger(__name__)

MESSAGE_ID_DOMAIN = "goglobal.hk"

# The left part of a Message-ID is a dot-atom (RFC 5322 3.6.4): atoms of these characters joined by dots.
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str  # the From header, e.g. "GoGlobal Referral Network <no-reply@goglobal.hk>"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    start_tls: bool = False
    use_tls: bool = False
    timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if self.start_tls and self.use_tls:
            raise ValueError("start_tls and use_tls exclude each other: STARTTLS upgrades a plain connection")
        if (self.username is None) != (self.password is None):
            raise ValueError("give both an SMTP username and a password, or neither")
        if not 0 < self.port < 65536:
            raise ValueError(f"SMTP port {self.port} is out of range")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


def message_id_header(message_id: str) -> str:
    """`<{message_id}@goglobal.hk>`; characters a Message-ID cannot hold (`:`, spaces, brackets, `@`, line
    breaks) become dots, the same way every time, so ids like `<uuid>:email` keep working."""
    left = ".".join(atom for atom in _NOT_ATEXT.split(message_id) if atom)
    if not left:
        raise ValueError(f"{message_id!r} cannot make a Message-ID")
    return f"<{left}@{MESSAGE_ID_DOMAIN}>"


def _transfer_encoding(body: str) -> str:
    return "quoted-printable" if body.isascii() else "base64"


def build_message(
    config: SmtpConfig,
    to: str,
    rendered: RenderedEmail,
    message_id: str,
    language: str,
    *,
    date: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative message (plain text, then HTML; both UTF-8) to one recipient.

    `message_id` is the notification's own id: every retry of the same notification carries the same
    Message-ID, so receiving systems can recognise a duplicate. A recipient with a line break is refused.
    """
    message_id_value = message_id_header(message_id)
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    if len(message["To"].addresses) != 1:
        raise ValueError(f"{to!r} is not exactly one recipient address")
    message["Subject"] = " ".join(rendered.subject.split())
    moment = date or datetime.now(UTC)
    message["Date"] = format_datetime((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC))
    message["Message-ID"] = message_id_value
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    # 7-bit clean whatever the server offers: quoted-printable for ASCII, base64 for Chinese (a third of QP's size).
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte=_transfer_encoding(rendered.text))
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte=_transfer_encoding(rendered.html))
    # After the content: setting content drops every Content-* header of the message it is set on.
    message["Content-Language"] = language
    return message


def _scrub(text: str, config: SmtpConfig) -> str:
    return text.replace(config.password, "***") if config.password else text


def _by_code(code: int, text: str, config: SmtpConfig) -> EmailError:
    where = f"SMTP server {config.host}:{config.port}"
    message = _scrub(f"{where} answered {code}: {text.strip()}", config)
    if 500 <= code < 600:
        return PermanentEmailError(message, code)
    return TransientEmailError(message, code)


def _classify(exc: Exception, config: SmtpConfig) -> EmailError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # Permanent only if every refusal is; one 4xx among them is worth another try.
        retryable = [refused for refused in exc.recipients if not 500 <= refused.code < 600]
        refusals = retryable or exc.recipients
        if refusals:
            return _by_code(refusals[0].code, f"recipient refused: {refusals[0].message}", config)
        return TransientEmailError(_scrub(f"SMTP server {config.host}:{config.port} refused the recipient", config))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, exc.message, config)
    # Could not connect, timed out, the server hung up, TLS failed: nothing said about the message itself.
    reason = str(exc) or type(exc).__name__
    return TransientEmailError(_scrub(f"SMTP server {config.host}:{config.port} not usable: {reason}", config))


async def send(config: SmtpConfig, message: EmailMessage) -> None:
    """Hands `message` to the SMTP server (envelope sender and recipients from its From and To headers)."""
    try:
        refused, _ = await aiosmtplib.send(
            message,
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            start_tls=config.start_tls,
            use_tls=config.use_tls,
            timeout=config.timeout_s,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        error = _classify(exc, config)
        log.warning("e-mail %s not sent (%s): %s", message["Message-ID"], type(error).__name__, error)
        raise error from exc
    if refused:
        # Only possible with several recipients, some of whom were accepted: the message went out.
        log.warning("e-mail %s refused for some recipients: %s", message["Message-ID"], sorted(refused))
    log.info("e-mail %s handed to %s:%s", message["Message-ID"], config.host, config.port)


@dataclass(frozen=True)
class SmtpMailer:
    """The mailer port (`notifications.ports.Mailer`) on an SMTP server."""

    config: SmtpConfig

    async def send(self, to: str, rendered: RenderedEmail, message_id: str, language: str) -> None:
        try:
            message = build_message(self.config, to, rendered, message_id, language)
        except Exception as exc:  # an address or id problem: retrying would fail the same way
            log.exception("e-mail %s cannot be built", message_id)
            raise PermanentEmailError(f"cannot build the e-mail: {exc}") from exc
        await send(self.config, message)

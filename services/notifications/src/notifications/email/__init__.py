"""E-mail to partners, enterprises and operators: templates in English, Simplified and Traditional Chinese
(`render`), and the SMTP hand-off (`smtp`)."""

from notifications.email.render import SUPPORTED, RenderedEmail, UnknownTemplate, choose_language, kinds, render
from notifications.email.smtp import (
    EmailError,
    PermanentEmailError,
    SmtpConfig,
    TransientEmailError,
    build_message,
    send,
)

__all__ = [
    "SUPPORTED",
    "EmailError",
    "PermanentEmailError",
    "RenderedEmail",
    "SmtpConfig",
    "TransientEmailError",
    "UnknownTemplate",
    "build_message",
    "choose_language",
    "kinds",
    "render",
    "send",
]

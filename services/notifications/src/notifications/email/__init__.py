"""E-mail to partners, enterprises and operators: templates in English, Simplified and Traditional Chinese
(`render`), and the SMTP hand-off (`smtp`)."""

from notifications.email.render import SUPPORTED, RenderedEmail, UnknownTemplate, choose_language, kinds, render
from notifications.email.smtp import SmtpConfig, SmtpMailer, build_message, send
from notifications.errors import EmailError, PermanentEmailError, TransientEmailError

__all__ = [
    "SUPPORTED",
    "EmailError",
    "PermanentEmailError",
    "RenderedEmail",
    "SmtpConfig",
    "SmtpMailer",
    "TransientEmailError",
    "UnknownTemplate",
    "build_message",
    "choose_language",
    "kinds",
    "render",
    "send",
]

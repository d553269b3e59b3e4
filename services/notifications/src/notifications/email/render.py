"""Renders a notification e-mail (subject, plain text, HTML) from the templates next to this module.

Templates live in `templates/<language>/`: `<kind>.subject.txt`, `<kind>.txt` and `<kind>.html`, each language
with its own base layout (`base.txt`, `base.html`), building blocks (`_blocks.txt`, `_blocks.html`) and
vocabulary (`_labels.jinja`: category names, urgency, budget bands, reasons, markets, sectors, provinces).
Only `.html` templates are autoescaped; undefined variables raise, so a missing fact fails loudly instead of
sending a mail with a hole in it.

The context of every kind carries `portal_url` (the partner and enterprise portal, no trailing slash needed) and
may carry `recipient_name` (the greeting) and `support_email`. Datetimes may be aware or naive (taken as UTC)
`datetime`s, or ISO 8601 strings; enum members and plain strings are both fine. Per kind (partner kinds take
their partner event's `model_dump()`, `goglobal_contract.partner_events`):

partners
    referral_offered      referral_id, need {service_category, target_markets, description, urgency,
                          budget_band, languages}, enterprise {sector, size_band, hq_province, preferred_languages},
                          offered_at, respond_by (round is not shown)
    offer_withdrawn       referral_id, reason (OfferWithdrawalReason), withdrawn_at
    offer_expired         referral_id, offered_at, expired_at
    referral_accepted     referral_id, accepted_at, enterprise {legal_name_zh, legal_name_en, hq_province, hq_city,
                          contact: {name, email, phone} or None}
    referral_withdrawn    referral_id, withdrawn_at
    referral_closed       referral_id, reason (the operator's words), closed_at
    referral_rated        referral_id, score (1-5), comment, rated_at
    endpoint_disabled     partner_id, url, reason, disabled_at
enterprises (the moment of each event is optional; `service_category` may come as `need.service_category`)
    request_received                request_id, needs [{service_category, target_markets, description, urgency,
                                    budget_band; optional languages, referral_id}]; optional received_at
    referral_offered_enterprise     referral_id; optional service_category, offered_at, respond_by
    referral_accepted_enterprise    referral_id, partner_name; optional service_category, accepted_at,
                                    contact_shared (whether the enterprise's contact details went to the partner)
    referral_unmatched_enterprise   referral_id; optional service_category, unmatched_at
    referral_completed_enterprise   referral_id, partner_name, outcome (Outcome); optional service_category,
                                    notes, completed_at
operators
    endpoint_disabled_operators     partner_id, url, reason, disabled_at; optional partner_name
"""

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape

SUPPORTED = ("en", "zh-Hans", "zh-Hant")
DEFAULT_LANGUAGE = "en"

TEMPLATES = Path(__file__).with_name("templates")

# Beijing and Hong Kong keep UTC+8 all year (no daylight saving).
_UTC8 = timezone(timedelta(hours=8))

_SUBJECT_SUFFIX = ".subject.txt"

# Optional facts, filled in when the caller leaves them out; every other name a template uses is required.
_COMMON_DEFAULTS: dict[str, Any] = {"recipient_name": None, "support_email": None}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "request_received": {"received_at": None},
    "referral_offered_enterprise": {"service_category": None, "offered_at": None, "respond_by": None},
    "referral_accepted_enterprise": {"service_category": None, "contact_shared": None, "accepted_at": None},
    "referral_unmatched_enterprise": {"service_category": None, "unmatched_at": None},
    "referral_completed_enterprise": {"service_category": None, "notes": "", "completed_at": None},
    "endpoint_disabled_operators": {"partner_name": None},
}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class UnknownTemplate(LookupError):
    """No templates for this kind, or not in this language."""


def _zh_for(subtags: list[str]) -> str:
    # A script subtag says it directly; otherwise the region decides (Hong Kong, Taiwan, Macao read Traditional).
    if "hant" in subtags:
        return "zh-Hant"
    if "hans" in subtags:
        return "zh-Hans"
    if any(tag in ("hk", "tw", "mo") for tag in subtags):
        return "zh-Hant"
    return "zh-Hans"


def _match(tag: str) -> str | None:
    subtags = [part for part in tag.split(";", 1)[0].strip().replace("_", "-").lower().split("-") if part]
    if not subtags:
        return None
    primary, rest = subtags[0], subtags[1:]
    if primary == "en":
        return "en"
    if primary == "zh":
        return _zh_for(rest)
    if primary == "yue":  # Cantonese: written in Traditional characters unless said otherwise
        return "zh-Hans" if "hans" in rest else "zh-Hant"
    return None


def choose_language(preferred: Sequence[str]) -> str:
    """The first of the recipient's preferred languages (BCP 47 tags, best first) that we write in.

    `zh-CN`, `zh-SG`, `zh` and `zh-Hans-*` give zh-Hans; `zh-HK`, `zh-TW`, `zh-MO` and `zh-Hant-*` give zh-Hant;
    any `en-*` gives en. A bare string is read as an Accept-Language list. Nothing we support: `en`.
    """
    tags = preferred.split(",") if isinstance(preferred, str) else preferred
    for tag in tags:
        if isinstance(tag, str) and (language := _match(tag)) is not None:
            return language
    return DEFAULT_LANGUAGE


def _as_utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_utc(value: datetime | str) -> str:
    """`2026-03-02 09:00 UTC`: the one way every mail writes a moment."""
    return _as_utc(value).strftime("%Y-%m-%d %H:%M UTC")


def format_utc8(value: datetime | str) -> str:
    """The same moment on the clock in Beijing and Hong Kong (UTC+8), without zone: the templates name it."""
    return _as_utc(value).astimezone(_UTC8).strftime("%Y-%m-%d %H:%M")


def _blank_none(value: Any) -> Any:
    # An optional fact left empty prints nothing, never "None".
    return "" if value is None else value


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        finalize=_blank_none,
    )
    env.filters["utc"] = format_utc
    env.filters["utc8"] = format_utc8
    return env


@functools.cache
def _kinds() -> tuple[str, ...]:
    prefix = f"{DEFAULT_LANGUAGE}/"
    names = environment().list_templates(filter_func=lambda name: name.startswith(prefix))
    return tuple(sorted(name[len(prefix) : -len(_SUBJECT_SUFFIX)] for name in names if name.endswith(_SUBJECT_SUFFIX)))


def kinds() -> list[str]:
    """Every kind of e-mail there are templates for."""
    return list(_kinds())


def _one_line(subject: str) -> str:
    # str.split() also splits on CR, LF, NEL, U+2028 and the other line breaks: no header can be smuggled in.
    return " ".join(subject.split())


_BLANK_LINES = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    lines = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return _BLANK_LINES.sub("\n\n", lines) + "\n"


def render(kind: str, language: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Subject, plain text and HTML of the `kind` e-mail in `language` (one of SUPPORTED)."""
    if language not in SUPPORTED:
        raise UnknownTemplate(f"no e-mail templates in {language!r}: use one of {SUPPORTED} (see choose_language)")
    if kind not in _kinds():
        raise UnknownTemplate(f"no e-mail templates for kind {kind!r}")
    values: dict[str, Any] = {**_COMMON_DEFAULTS, **_DEFAULTS.get(kind, {}), **context}
    if isinstance(values.get("portal_url"), str):
        values["portal_url"] = values["portal_url"].rstrip("/")
    need = values.get("need")
    if values.get("service_category") is None and isinstance(need, Mapping):
        values["service_category"] = need.get("service_category")
    env = environment()
    try:
        subject_template = env.get_template(f"{language}/{kind}{_SUBJECT_SUFFIX}")
        text_template = env.get_template(f"{language}/{kind}.txt")
        html_template = env.get_template(f"{language}/{kind}.html")
    except TemplateNotFound as exc:
        raise UnknownTemplate(f"no {language} template {exc.name!r} for kind {kind!r}") from exc
    subject = _one_line(subject_template.render(values))
    if not subject:
        raise ValueError(f"the {language} subject of {kind!r} rendered empty")
    values["subject"] = subject
    text = _tidy(text_template.render(values))
    html = html_template.render(values).strip() + "\n"
    return RenderedEmail(subject=subject, text=text, html=html)

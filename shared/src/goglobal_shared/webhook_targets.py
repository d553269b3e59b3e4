"""Where a webhook may point. Pure: decided from the URL alone (delivery re-checks the resolved addresses).

A webhook URL is a server-side request the platform makes on a partner's behalf, so it must not reach the
platform's own network (SSRF): loopback, private, link-local and other non-public literal addresses and
`localhost` are refused unless a deployment explicitly allows them (development and tests)."""

import ipaddress
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
WHITESPACE_OR_CONTROL = "contains whitespace or control characters"
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def has_whitespace_or_control(url: str) -> bool:
    """Spaces, tabs, line breaks, other Unicode whitespace or control characters (C0, DEL, C1) anywhere in `url`.
    URL parsers drop or percent-encode them silently; a webhook target must be refused instead."""
    return any(ch.isspace() or ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in url)


def webhook_url_problem(url: str, allow_private: bool) -> str | None:
    """Why `url` may not be a webhook target, or None when it may."""
    if len(url) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    if has_whitespace_or_control(url):
        return WHITESPACE_OR_CONTROL
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "is not a valid URL"
    if parts.scheme not in ("https", "http") or not hostname:
        return "must be an https URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@)"
    if allow_private:
        return None
    host = hostname.rstrip(".").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return f"{host} is this machine; webhooks go to public hosts"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked again when a delivery resolves it
    if not address.is_global:
        return f"{address} is not a public address"
    return None

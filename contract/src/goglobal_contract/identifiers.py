"""Validated scalar types (USCC, E.164 phone, BCP 47 language tag, market, partner id) and the list rules models
share.

Every validator raises `ValueError` with a message meant to be shown to an API user as-is.
"""

import functools
import re
import string
from collections.abc import Hashable, Iterable
from typing import Annotated, TypeVar

import langcodes
import phonenumbers
import pycountry
from pydantic import AfterValidator, Field

from goglobal_contract.markets import MARKET_CODES, REGIONS, is_market

# GB 32100-2015 drops I, O, S, V and Z so that codes cannot be misread (I/1, O/0, S/5, V/U, Z/2).
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_LENGTH = 18
_REGION = slice(2, 8)  # characters 3-8: the administrative division code of the registering authority


def _check_characters(code: str) -> None:
    for position, char in enumerate(code, start=1):
        if char not in USCC_CHARSET:
            raise ValueError(
                f"character {char!r} at position {position} is not allowed in a Unified Social Credit Code "
                "(only digits and capital letters except I, O, S, V, Z)"
            )
    if not code[_REGION].isdigit():
        raise ValueError(f"characters 3-8 (region code) must be digits, got {code[_REGION]!r}")


def _check_character(first17: str) -> str:
    total = sum(USCC_CHARSET.index(char) * weight for char, weight in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def uscc_with_check(first17: str) -> str:
    """Complete a 17-character USCC body with its check character."""
    body = first17.upper()
    if len(body) != _USCC_LENGTH - 1:
        raise ValueError(f"a USCC body has 17 characters, got {len(body)}")
    _check_characters(body)
    return body + _check_character(body)


def check_uscc(code: str) -> str:
    """Validate a Unified Social Credit Code (GB 32100-2015) and return it upper-cased."""
    normalised = code.upper()
    if len(normalised) != _USCC_LENGTH:
        raise ValueError(f"a Unified Social Credit Code has 18 characters, got {len(normalised)}")
    _check_characters(normalised)
    expected = _check_character(normalised[:-1])
    if normalised[-1] != expected:
        raise ValueError(f"check character should be {expected}, got {normalised[-1]}: the code is mistyped")
    return normalised


_USCC_CHARACTER = "[0-9A-HJ-NP-RTUWXY]"  # USCC_CHARSET as a character class
USCC_PATTERN = f"^{_USCC_CHARACTER}{{2}}[0-9]{{6}}{_USCC_CHARACTER}{{10}}$"
UnifiedSocialCreditCode = Annotated[
    str,
    AfterValidator(check_uscc),
    Field(
        description="Unified Social Credit Code (GB 32100-2015): 18 digits and capital letters except I, O, S, V "
        "and Z, characters 3-8 being the region code (digits); lower-case letters are upper-cased. The 18th "
        "character is a check character computed from the other 17, which the pattern cannot express: a code "
        "with a wrong check character is refused as mistyped.",
        examples=["91440300MA5FJ6QW16"],
        json_schema_extra={"pattern": USCC_PATTERN},
    ),
]

# E.164: '+', a country code that never starts with 0, at most 15 digits in all.
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def check_e164(number: str) -> str:
    """Validate a phone number given in E.164 form and return its canonical E.164 spelling."""
    if not _E164.fullmatch(number):
        raise ValueError(
            f"{number!r} is not in E.164 form: write '+', the country code and the number, "
            "with no spaces or punctuation, e.g. +8613812345678"
        )
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{number!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{number!r} is not a valid phone number for its country code")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


E164Phone = Annotated[
    str,
    AfterValidator(check_e164),
    Field(
        description="A phone number in E.164 form: '+', the country code and the number, with no spaces or "
        "punctuation. It must also be a valid number for its country code (length and prefixes, as "
        "libphonenumber knows them), which the pattern cannot express: other numbers are refused.",
        examples=["+8613812345678", "+85221234567"],
        # No number libphonenumber calls valid has fewer than 6 digits (country code included).
        json_schema_extra={"pattern": r"^\+[1-9][0-9]{5,14}$"},
    ),
]


@functools.lru_cache(maxsize=1024)  # a few dozen tags occur in practice; langcodes parses each one afresh
def check_language_tag(tag: str) -> str:
    """Validate a BCP 47 language tag and return its standard spelling (`zh-hans` → `zh-Hans`, `iw` → `he`)."""
    try:
        valid = langcodes.tag_is_valid(tag)
        standard = langcodes.standardize_tag(tag) if valid else ""
    except (ValueError, LookupError):  # langcodes signals some malformed tags by raising instead
        valid = False
    if not valid:
        raise ValueError(f"{tag!r} is not a valid BCP 47 language tag, e.g. zh-Hans, zh-Hant, en")
    return standard


def _alternatives(codes: Iterable[str]) -> str:
    """A regular expression alternation matching exactly `codes`, shortened by first character:
    ["ab", "ac", "ad", "bz"] -> "a[b-d]|bz"."""
    by_first: dict[str, list[str]] = {}
    for code in sorted(set(codes)):
        by_first.setdefault(code[0], []).append(code[1:])
    return "|".join(first + _one_of(rests) for first, rests in by_first.items())


def _one_of(rests: list[str]) -> str:
    if len(rests) == 1:
        return re.escape(rests[0])
    if any(len(rest) != 1 for rest in rests):
        return "(?:" + "|".join(re.escape(rest) for rest in rests) + ")"
    runs: list[list[str]] = []
    for char in rests:  # sorted: consecutive characters become ranges
        if runs and ord(char) == ord(runs[-1][-1]) + 1:
            runs[-1].append(char)
        else:
            runs.append([char])
    return (
        "["
        + "".join(
            run[0] if len(run) == 1 else f"{run[0]}{run[-1]}" if len(run) == 2 else f"{run[0]}-{run[-1]}"
            for run in runs
        )
        + "]"
    )


def _language_tag_pattern() -> str:
    """The tags this API documents: a registered two-letter language (or any three letters), then optionally a
    registered script and a registered two-letter (or any three-digit) region, spelled as they are stored."""
    letters = string.ascii_lowercase
    languages = [a + b for a in letters for b in letters if langcodes.tag_is_valid(a + b)]
    scripts = [script.alpha_4 for script in pycountry.scripts if langcodes.tag_is_valid(f"en-{script.alpha_4}")]
    upper = string.ascii_uppercase
    regions = [a + b for a in upper for b in upper if langcodes.tag_is_valid(f"en-{a}{b}")]
    return (
        f"^(?:{_alternatives(languages)}|[a-z]{{3}})"
        f"(?:-(?:{_alternatives(scripts)}))?"
        f"(?:-(?:{_alternatives(regions)}|[0-9]{{3}}))?$"
    )


LANGUAGE_TAG_PATTERN = _language_tag_pattern()
LanguageTag = Annotated[
    str,
    AfterValidator(check_language_tag),
    Field(
        description="A BCP 47 language tag: language, then optionally script and region (zh-Hans, zh-Hant-HK, "
        "en-GB), stored in its standard spelling (zh-hans becomes zh-Hans, iw becomes he). The pattern lists the "
        "registered two-letter languages, scripts and two-letter regions; a three-letter language or a numeric "
        "region must be registered too (IANA Language Subtag Registry), which it cannot express: others are "
        "refused. Registered variants and extensions (de-CH-1901) are accepted as well.",
        examples=["zh-Hans", "zh-Hant", "en"],
        json_schema_extra={"pattern": LANGUAGE_TAG_PATTERN},
    ),
]


def check_market(code: str) -> str:
    """Validate a target market: an ISO 3166-1 alpha-2 country code ("AE") or a region name ("MIDDLE_EAST")."""
    if not is_market(code):
        raise ValueError(f"{code!r} is neither an ISO 3166-1 alpha-2 country code nor a known region")
    return code


# Lives here rather than in events.py because the event payloads are built from these domain types.
MarketCode = Annotated[
    str,
    AfterValidator(check_market),
    Field(
        description="A target market: an ISO 3166-1 alpha-2 country code, or a region standing for its member "
        f"countries ({', '.join(sorted(REGIONS))})",
        examples=["AE", "MIDDLE_EAST"],
        json_schema_extra={"enum": list(MARKET_CODES)},
    ),
]

H = TypeVar("H", bound=Hashable)


def reject_duplicates(items: list[H]) -> list[H]:
    """List rule for sets the user states once per item: a repeat is most likely a typo, so say so."""
    seen: set[H] = set()
    for item in items:
        if item in seen:
            raise ValueError(f"'{item!s}' is listed more than once")
        seen.add(item)
    return items


def drop_duplicates(items: list[H]) -> list[H]:
    """List rule for sets where repeats are harmless: keep the first occurrence, in order."""
    return list(dict.fromkeys(items))


RESERVED_PARTNER_IDS = frozenset({"me", "import"})  # path segments of the partners API


def not_reserved(partner_id: str) -> str:
    if partner_id in RESERVED_PARTNER_IDS:
        raise ValueError(f"{partner_id!r} is reserved; choose another partner id")
    return partner_id


PartnerId = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", examples=["harbour-legal"]), AfterValidator(not_reserved)
]

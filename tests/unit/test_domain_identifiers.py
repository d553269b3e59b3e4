"""USCC, E.164 phone, language tag, market and sector validation."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from goglobal_contract.identifiers import (
    USCC_CHARSET,
    E164Phone,
    LanguageTag,
    MarketCode,
    check_uscc,
    uscc_with_check,
)
from goglobal_contract.markets import REGIONS, is_market
from goglobal_contract.sectors import DIVISIONS, SECTORS, SectorCode, check_sector

# Computed with the GB 32100-2015 algorithm (the first also serves as the model examples' code).
VALID_USCCS = ["91440300MA5FJ6QW16", "91440300MA5DC6QX1K", "91110000MA01ABCD2Q"]

uscc_bodies = st.builds(
    lambda head, region, tail: head + region + tail,
    st.text(USCC_CHARSET, min_size=2, max_size=2),
    st.text("0123456789", min_size=6, max_size=6),
    st.text(USCC_CHARSET, min_size=9, max_size=9),
)
# Any character but the one replaced and its lower-case spelling (which normalises back to it).
replacement_chars = st.characters(codec="utf-8", exclude_characters="\n")


@pytest.mark.parametrize("code", VALID_USCCS)
def test_valid_usccs_are_accepted(code: str) -> None:
    assert check_uscc(code) == code


def test_lower_case_is_normalised() -> None:
    assert check_uscc("91440300ma5fj6qw16") == "91440300MA5FJ6QW16"


@given(uscc_bodies)
def test_a_body_completed_with_its_check_character_is_valid_and_any_other_last_character_is_not(body: str) -> None:
    code = uscc_with_check(body)
    assert check_uscc(code) == code
    for wrong in set(USCC_CHARSET) - {code[-1]}:
        with pytest.raises(ValueError, match="check character should be"):
            check_uscc(body + wrong)


@pytest.mark.parametrize("code", VALID_USCCS)
@given(data=st.data())
def test_every_single_character_change_is_rejected(code: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(code) - 1))
    char = data.draw(replacement_chars.filter(lambda c: c.upper() != code[position]))
    with pytest.raises(ValueError):
        check_uscc(code[:position] + char + code[position + 1 :])


@pytest.mark.parametrize("code", VALID_USCCS)
def test_every_substitution_from_the_charset_is_rejected(code: str) -> None:
    # Exhaustive for the characters that pass the charset check: only the check sum can catch these.
    for position in range(len(code)):
        for char in set(USCC_CHARSET) - {code[position]}:
            with pytest.raises(ValueError):
                check_uscc(code[:position] + char + code[position + 1 :])


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("91440300MA5FJ6QW1", "18 characters, got 17"),
        ("91440300MA5FJ6QW166", "18 characters, got 19"),
        ("91440300MA5FJ6QWI6", "'I' at position 17 is not allowed"),
        ("91A40300MA5FJ6QW16", "region code"),
        ("91440300MA5FJ6QW17", "check character should be 6, got 7"),
    ],
)
def test_invalid_usccs_say_what_is_wrong(code: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_uscc(code)


def test_uscc_with_check_wants_17_characters() -> None:
    with pytest.raises(ValueError, match="17 characters"):
        uscc_with_check("9144030")


PHONE = TypeAdapter(E164Phone)


@pytest.mark.parametrize("number", ["+8613812345678", "+85221234567", "+971501234567", "+447911123456"])
def test_e164_numbers_are_accepted(number: str) -> None:
    assert PHONE.validate_python(number) == number


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("13812345678", "not in E.164 form"),
        ("+86 138 1234 5678", "not in E.164 form"),
        ("+86-138-1234-5678", "not in E.164 form"),
        ("+0123456789", "not in E.164 form"),
        ("+861234", "not a valid phone number"),
        ("+85200000000", "not a valid phone number"),
        ("", "not in E.164 form"),
    ],
)
def test_other_phone_numbers_are_rejected(number: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        PHONE.validate_python(number)


LANGUAGE = TypeAdapter(LanguageTag)


@pytest.mark.parametrize(
    ("tag", "standard"),
    [("zh-Hans", "zh-Hans"), ("zh-hans", "zh-Hans"), ("ZH-HANT", "zh-Hant"), ("en", "en"), ("iw", "he")],
)
def test_language_tags_are_standardised(tag: str, standard: str) -> None:
    assert LANGUAGE.validate_python(tag) == standard


@pytest.mark.parametrize("tag", ["", "x", "english", "en--us", "123", "xx-yy"])
def test_invalid_language_tags_are_rejected(tag: str) -> None:
    with pytest.raises(ValidationError, match="not a valid BCP 47 language tag"):
        LANGUAGE.validate_python(tag)


@given(st.text(max_size=20))
def test_language_validation_only_ever_raises_validation_errors(tag: str) -> None:
    with contextlib.suppress(ValidationError):
        LANGUAGE.validate_python(tag)


@pytest.mark.parametrize("code", ["AE", "SA", "HK", "GB", "ASEAN", "MIDDLE_EAST", *REGIONS])
def test_real_countries_and_regions_are_markets(code: str) -> None:
    assert is_market(code)
    assert TypeAdapter(MarketCode).validate_python(code) == code


@pytest.mark.parametrize("code", ["XX", "UK", "ae", "ARE", "A", "asean", "AE\n", ""])
def test_everything_else_is_not_a_market(code: str) -> None:
    assert not is_market(code)
    with pytest.raises(ValidationError, match="neither an ISO 3166-1 alpha-2 country code nor a known region"):
        TypeAdapter(MarketCode).validate_python(code)


def test_every_region_member_is_an_iso_country() -> None:
    assert all(is_market(country) for members in REGIONS.values() for country in members)


SECTOR = TypeAdapter(SectorCode)


def test_sections_a_to_u_are_listed_with_their_divisions() -> None:
    assert list(SECTORS) == list("ABCDEFGHIJKLMNOPQRSTU") == list(DIVISIONS)


@pytest.mark.parametrize(("code", "normalised"), [("C", "C"), ("c26", "C26"), ("A01", "A01"), ("U99", "U99")])
def test_sections_and_their_divisions_are_sectors(code: str, normalised: str) -> None:
    assert SECTOR.validate_python(code) == normalised


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("G26", "division 26 belongs to section C"),
        ("C04", "division 04 does not exist"),
        ("V", "not an ISIC Rev.4 sector"),
        ("C2", "not an ISIC Rev.4 sector"),
        ("C261", "not an ISIC Rev.4 sector"),
        ("", "not an ISIC Rev.4 sector"),
    ],
)
def test_other_sector_codes_are_rejected(code: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_sector(code)


def test_every_division_belongs_to_exactly_one_section() -> None:
    for division in range(100):
        owners = [section for section, (low, high) in DIVISIONS.items() if low <= division <= high]
        assert len(owners) <= 1

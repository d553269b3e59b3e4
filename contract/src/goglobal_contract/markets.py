"""Target markets: ISO 3166-1 alpha-2 country codes, plus named regions that expand to their members."""

import re

import pycountry

REGIONS: dict[str, frozenset[str]] = {
    "MIDDLE_EAST": frozenset({"AE", "SA", "QA", "KW", "BH", "OM", "JO", "IL", "TR", "EG", "IQ", "LB"}),
    "ASEAN": frozenset({"BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN"}),
    "SOUTH_AMERICA": frozenset({"AR", "BO", "BR", "CL", "CO", "EC", "GY", "PY", "PE", "SR", "UY", "VE"}),
    "EUROPE": frozenset(
        {
            "AT",
            "BE",
            "BG",
            "HR",
            "CY",
            "CZ",
            "DK",
            "EE",
            "FI",
            "FR",
            "DE",
            "GR",
            "HU",
            "IE",
            "IT",
            "LV",
            "LT",
            "LU",
            "MT",
            "NL",
            "PL",
            "PT",
            "RO",
            "SK",
            "SI",
            "ES",
            "SE",
            "GB",
            "CH",
            "NO",
            "IS",
        }
    ),
}

_COUNTRY = re.compile(r"^[A-Z]{2}$")
COUNTRIES: tuple[str, ...] = tuple(sorted(country.alpha_2 for country in pycountry.countries))
MARKET_CODES: tuple[str, ...] = (*sorted(REGIONS), *COUNTRIES)  # every code `is_market` accepts


def is_market(code: str) -> bool:
    """A region name, or an upper-case code that ISO 3166-1 actually assigns (so "XX" and "UK" are refused)."""
    # The shape check comes first: pycountry matches case-insensitively, and codes are stored upper-case.
    return code in REGIONS or (bool(_COUNTRY.fullmatch(code)) and pycountry.countries.get(alpha_2=code) is not None)


def expand(code: str) -> frozenset[str]:
    """The countries a market code stands for: a region's members, or the country itself."""
    return REGIONS.get(code, frozenset({code}))


def covers(coverage: frozenset[str] | set[str], market: str) -> bool:
    """Whether a partner covering `coverage` (countries and/or regions) serves every country of `market`."""
    countries: set[str] = set()
    for code in coverage:
        countries |= expand(code)
    return expand(market) <= countries

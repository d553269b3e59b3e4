"""Industry sectors as ISIC Rev.4 codes: a section letter ("C") or a section plus one of its divisions ("C26")."""

import re
from typing import Annotated

from pydantic import AfterValidator, Field

SECTORS: dict[str, str] = {
    "A": "Agriculture, forestry and fishing",
    "B": "Mining and quarrying",
    "C": "Manufacturing",
    "D": "Electricity, gas, steam and air conditioning supply",
    "E": "Water supply; sewerage, waste management and remediation activities",
    "F": "Construction",
    "G": "Wholesale and retail trade; repair of motor vehicles and motorcycles",
    "H": "Transportation and storage",
    "I": "Accommodation and food service activities",
    "J": "Information and communication",
    "K": "Financial and insurance activities",
    "L": "Real estate activities",
    "M": "Professional, scientific and technical activities",
    "N": "Administrative and support service activities",
    "O": "Public administration and defence; compulsory social security",
    "P": "Education",
    "Q": "Human health and social work activities",
    "R": "Arts, entertainment and recreation",
    "S": "Other service activities",
    "T": (
        "Activities of households as employers; "
        "undifferentiated goods- and services-producing activities of households for own use"
    ),
    "U": "Activities of extraterritorial organizations and bodies",
}

# The two-digit divisions of each section (inclusive bounds). Rev.4 leaves gaps (04, 34, 40, 44, ...) between
# sections, so a division number alone never belongs to two sections.
DIVISIONS: dict[str, tuple[int, int]] = {
    "A": (1, 3),
    "B": (5, 9),
    "C": (10, 33),
    "D": (35, 35),
    "E": (36, 39),
    "F": (41, 43),
    "G": (45, 47),
    "H": (49, 53),
    "I": (55, 56),
    "J": (58, 63),
    "K": (64, 66),
    "L": (68, 68),
    "M": (69, 75),
    "N": (77, 82),
    "O": (84, 84),
    "P": (85, 85),
    "Q": (86, 88),
    "R": (90, 93),
    "S": (94, 96),
    "T": (97, 98),
    "U": (99, 99),
}

_SHAPE = re.compile(r"([A-Z])([0-9]{2})?")


def section_of(division: int) -> str | None:
    """The section a division number belongs to, if any."""
    return next((section for section, (low, high) in DIVISIONS.items() if low <= division <= high), None)


def check_sector(code: str) -> str:
    """Validate an ISIC Rev.4 section or section+division code and return it upper-cased."""
    normalised = code.upper()
    shape = _SHAPE.fullmatch(normalised)
    if shape is None or shape[1] not in SECTORS:
        raise ValueError(
            f"{code!r} is not an ISIC Rev.4 sector: use a section letter A-U (e.g. 'C') "
            "or a section followed by its two-digit division (e.g. 'C26')"
        )
    if shape[2] is not None:
        owner = section_of(int(shape[2]))
        if owner != shape[1]:
            where = f"belongs to section {owner}" if owner else "does not exist in ISIC Rev.4"
            raise ValueError(f"division {shape[2]} {where}, so {normalised!r} is not a valid sector code")
    return normalised


SECTOR_CODES: tuple[str, ...] = tuple(
    code
    for section, (low, high) in DIVISIONS.items()
    for code in (section, *(f"{section}{division:02d}" for division in range(low, high + 1)))
)  # every code `check_sector` accepts, upper-cased
SectorCode = Annotated[
    str,
    AfterValidator(check_sector),
    Field(
        description="An ISIC Rev.4 sector: a section letter (A-U), or a section followed by one of its two-digit "
        "divisions (C26); lower case is accepted and upper-cased",
        examples=["C", "C26"],
        json_schema_extra={"enum": list(SECTOR_CODES)},
    ),
]

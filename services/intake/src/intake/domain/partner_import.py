"""Bulk partner import: turn an uploaded CSV, JSON or HSDS 3.0 file into one `ImportRow` per record.

Pure: bytes in, rows out. A bad record yields an `ImportRow` with errors and no partner; it never stops the
records after it. Each `ImportRow` has exactly one of `partner` or a non-empty `errors`. An `id` that already
appeared earlier in the same file is an error on the later record.

`line` numbers:

* CSV: the physical line the record starts on, the header being line 1;
* JSON and HSDS: the 1-based position of the item in the array;
* 0 for a problem with the file as a whole (not UTF-8, not JSON, wrong top-level shape), with field "file".

CSV
---
UTF-8 (a byte-order mark is allowed), comma-separated, first line = header. Column names are case-insensitive;
the order is free. Lists inside a cell are separated by `;`. Blank lines are skipped; an empty cell means
"not given" (the default applies, or "required" is reported).

==========================  ========  ==========================================================================
column                      required  content
==========================  ========  ==========================================================================
id                          yes       partner id: lower-case letters, digits and `-`, 2-63 characters
name                        yes       organisation name
categories                  yes       `;`-separated; each `category` or `category:specialty|specialty`,
                                      e.g. `legal:company formation|contracts;tax`
markets                     yes       `;`-separated ISO 3166-1 alpha-2 codes or region names (upper-cased here)
sectors                     no        `;`-separated ISIC Rev.4 codes, e.g. `C;G46`
languages                   yes       `;`-separated BCP 47 tags, e.g. `zh-Hant;en`
capacity                    yes       most referrals held open at once, 1-1000
response_window_hours       no        1-720, default 48
offer_strategy              no        `sequential` (default) or `parallel`
parallel_offers             no        1-10, default 1; must be 1 for `sequential`
active                      no        true/false/yes/no/1/0, default true
contact_name                yes       contact person
contact_email               yes       contact e-mail
contact_phone               yes       E.164, e.g. +85221234567
webhook_url                 no        https URL for referral delivery, without whitespace or control characters
delivery_email              no        e-mail address for referral delivery
==========================  ========  ==========================================================================

Header problems (a required column missing, an unknown or unnamed column, a column named twice) yield a single
`ImportRow` at line 1 listing every problem, and no other row is read: the columns cannot be trusted. Errors
name the CSV column (`contact_email`, not `contact.email`).

JSON
----
An array of `PartnerRecord` objects, or `{"partners": [...]}`. Errors name the dotted field path, e.g.
`contact.email` or `categories.0.category`.

HSDS 3.0 (Open Referral Human Services Data Specification)
----------------------------------------------------------
An array of `organization` objects, `{"organizations": [...]}`, or an HSDS API page `{"contents": [...]}`.

=====================  ==================================================================================
partner field          taken from
=====================  ==================================================================================
id                     `organization.id`, slugified: lower-cased, each run of non-alphanumerics → `-`,
                       leading/trailing `-` removed, cut to 63 characters
name                   `organization.name`
categories             per service: its `attributes[].taxonomy_term` `code` or `name` when that names a
                       category (`legal`, `Intellectual Property`, ...), else keywords of `CATEGORY_KEYWORDS`
                       in the term name; failing both, keywords in the service `name`
specialties            the names of the services mapped to the category, lower-cased, cut to 80 characters,
                       at most 20 per category; a name that is only a keyword (e.g. "Tax") is left out
markets                `services[].service_areas[].name` (or `extent` when `extent_type` is "text"): a region
                       name, an ISO alpha-2/alpha-3 code, a country name known to pycountry, or one of
                       `MARKET_ALIASES` (UAE, UK, ...). An area that resolves to nothing is an error.
languages              `services[].languages[].code`
capacity               `organization["x-goglobal-capacity"]`, default 10
contact                `contacts[0]` name / email / `phones[0].number`, each falling back to the
                       organization's `name` / `email` / `phones[0].number`. Spaces, dots, dashes and brackets
                       are removed from phone numbers written in international form (`+852 2123 4567`).
=====================  ==================================================================================

Other partner fields take their defaults. Errors name the partner field as in CSV (`markets`, `contact_email`).
"""

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, get_args

import pycountry
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from goglobal_contract.enums import ServiceCategory
from goglobal_contract.markets import REGIONS, is_market
from intake.domain.inputs.partner import PartnerRecord

ImportFormat = Literal["csv", "json", "hsds"]
FORMATS: tuple[ImportFormat, ...] = get_args(ImportFormat)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass(frozen=True)
class ImportRow:
    line: int
    partner: PartnerRecord | None
    errors: list[FieldError]

    def __post_init__(self) -> None:
        if (self.partner is None) == (not self.errors):
            raise ValueError("an ImportRow has either a partner or errors, never both or neither")


def parse_partners(data: bytes, fmt: ImportFormat) -> Iterator[ImportRow]:
    """Parse an uploaded file; see the module docstring for the formats."""
    parsers: dict[str, Callable[[bytes], Iterator[ImportRow]]] = {
        "csv": _parse_csv,
        "json": _parse_json,
        "hsds": _parse_hsds,
    }
    if fmt not in parsers:
        raise ValueError(f"unknown import format {fmt!r}: use one of {', '.join(FORMATS)}")
    return _unique_ids(parsers[fmt](data))


def detect_format(
    filename: str, content_type: str | None, data: bytes | None = None, *, declared: str | None = None
) -> ImportFormat:
    """The format of an upload: `declared` if given, else from the file name or content type.

    JSON is reported as "hsds" when `data` is given and its items look like HSDS organizations.
    Raises ValueError when the format cannot be told.
    """
    if declared is not None:
        return _declared_format(declared)
    kind = _format_from_name(filename) or _format_from_type(content_type)
    if kind is None:
        raise ValueError(f"cannot tell the format of {filename!r}: upload a .csv or .json file, or name the format")
    if kind == "json" and data is not None and _looks_like_hsds(data):
        return "hsds"
    return kind


def _declared_format(declared: str) -> ImportFormat:
    for fmt in FORMATS:
        if declared.strip().lower() == fmt:
            return fmt
    raise ValueError(f"unknown import format {declared!r}: use one of {', '.join(FORMATS)}")


def _format_from_name(filename: str) -> ImportFormat | None:
    suffix = filename.lower().rpartition(".")[2]
    return "csv" if suffix == "csv" else "json" if suffix == "json" else None


def _format_from_type(content_type: str | None) -> ImportFormat | None:
    media = (content_type or "").partition(";")[0].strip().lower()
    # Browsers on Windows label .csv uploads as the Excel type.
    if media in {"text/csv", "application/csv", "application/vnd.ms-excel"}:
        return "csv"
    if media == "application/json" or media.endswith("+json"):
        return "json"
    return None


def _looks_like_hsds(data: bytes) -> bool:
    try:
        document: object = json.loads(data)
    except (ValueError, RecursionError):
        return False  # let parsing report the broken JSON
    if isinstance(document, dict) and "organizations" in document:
        return True
    items = _items(document, ("partners", "contents"))
    first = items[0] if items else None
    return isinstance(first, dict) and bool({"services", "service_areas", "organization"} & first.keys())


def _unique_ids(rows: Iterable[ImportRow]) -> Iterator[ImportRow]:
    first_line: dict[str, int] = {}
    for row in rows:
        if row.partner is not None and row.partner.id in first_line:
            where = first_line[row.partner.id]
            message = f"id {row.partner.id!r} is already used by the record at line {where}"
            yield ImportRow(row.line, None, [FieldError("id", message)])
            continue
        if row.partner is not None:
            first_line[row.partner.id] = row.line
        yield row


def _file_error(message: str) -> ImportRow:
    return ImportRow(0, None, [FieldError("file", message)])


# --- validation and error reporting -------------------------------------------------------------------------------

Loc = tuple[int | str, ...]


def _validate(
    line: int, record: dict[str, object], field_of: Callable[[Loc], str], known: list[FieldError] | None = None
) -> ImportRow:
    """Validate a record, adding to the errors already `known` from reading it (those fields take precedence)."""
    known = known or []
    try:
        partner = PartnerRecord.model_validate(record)
    except ValidationError as exc:
        reported = {error.field for error in known}
        found = (_field_error(error, field_of) for error in exc.errors())
        return ImportRow(line, None, known + [error for error in found if error.field not in reported])
    return ImportRow(line, None, known) if known else ImportRow(line, partner, [])


def _field_error(error: ErrorDetails, field_of: Callable[[Loc], str]) -> FieldError:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required, but missing or empty"
    value = error.get("input")
    # Most pydantic messages do not repeat the offending value; a user fixing a file needs to see it.
    if isinstance(value, str) and 0 < len(value) <= 80 and value not in message:
        message = f"{message} (got {value!r})"
    return FieldError(field_of(tuple(error["loc"])), message)


_FLAT_NAMES: dict[Loc, str] = {
    ("contact", "name"): "contact_name",
    ("contact", "email"): "contact_email",
    ("contact", "phone"): "contact_phone",
    ("delivery", "webhook_url"): "webhook_url",
    ("delivery", "email"): "delivery_email",
}


def _flat_name(loc: Loc) -> str:
    """The CSV column a pydantic error location belongs to."""
    return _FLAT_NAMES.get(loc[:2]) or (str(loc[0]) if loc else "row")


def _dotted_path(loc: Loc) -> str:
    return ".".join(str(part) for part in loc) or "row"


# --- CSV ----------------------------------------------------------------------------------------------------------

COLUMNS = (  # in the documented order, which is also the order of a template file
    "id",
    "name",
    "categories",
    "markets",
    "sectors",
    "languages",
    "capacity",
    "response_window_hours",
    "offer_strategy",
    "parallel_offers",
    "active",
    "contact_name",
    "contact_email",
    "contact_phone",
    "webhook_url",
    "delivery_email",
)
OPTIONAL_COLUMNS = (
    "sectors",
    "response_window_hours",
    "offer_strategy",
    "parallel_offers",
    "active",
    "webhook_url",
    "delivery_email",
)
REQUIRED_COLUMNS = tuple(column for column in COLUMNS if column not in OPTIONAL_COLUMNS)
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}

CsvLine = tuple[int, list[str] | str]  # a record's first line, and its cells or why it could not be read


def _parse_csv(data: bytes) -> Iterator[ImportRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield _file_error(f"the file is not UTF-8 text (bad byte at offset {exc.start}): save the CSV as UTF-8")
        return
    lines = _csv_lines(text)
    header = next(lines, None)
    if header is None:
        yield ImportRow(1, None, [FieldError("header", "the file is empty: the first line must name the columns")])
        return
    columns, problems = _read_header(header[1])
    if problems:
        yield ImportRow(1, None, problems)
        return
    for line, cells in lines:
        if isinstance(cells, str):
            yield ImportRow(line, None, [FieldError("row", cells)])
        elif any(cell.strip() for cell in cells):
            yield _csv_row(line, columns, cells)


def _csv_lines(text: str) -> Iterator[CsvLine]:
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if reader.line_num < start:
                return  # the reader made no progress; stop rather than loop
            yield start, f"this line is not valid CSV: {exc}"
            continue
        yield start, cells


def _read_header(cells: list[str] | str) -> tuple[list[str], list[FieldError]]:
    if isinstance(cells, str):
        return [], [FieldError("header", cells)]
    columns = [cell.strip().lower() for cell in cells]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    problems = [FieldError(name, "required column is missing from the header") for name in missing]
    for position, name in enumerate(columns, start=1):
        if not name:
            problems.append(FieldError(f"column {position}", "the header gives this column no name"))
        elif name not in COLUMNS:
            problems.append(FieldError(name, f"unknown column; the columns are: {', '.join(COLUMNS)}"))
        elif columns.index(name) != position - 1:
            problems.append(FieldError(name, "the header names this column more than once"))
    return columns, problems


def _csv_row(line: int, columns: list[str], cells: list[str]) -> ImportRow:
    if len(cells) > len(columns):
        message = f"the line has {len(cells)} cells but the header names only {len(columns)} columns"
        return ImportRow(line, None, [FieldError("row", message)])
    # Short rows are read as if the missing trailing cells were empty.
    values = {column: cell.strip() for column, cell in zip(columns, cells, strict=False) if cell.strip()}
    active = values.get("active", "true").lower()
    known = [] if active in _BOOLEANS else [FieldError("active", f"must be true/false/yes/no/1/0 (got {active!r})")]
    return _validate(line, _csv_record(values, _BOOLEANS.get(active, True)), _flat_name, known)


def _csv_record(values: dict[str, str], active: bool) -> dict[str, object]:
    """The PartnerRecord-shaped dict for one CSV row; empty cells are left out so defaults/"required" apply."""
    record: dict[str, object] = {
        key: values[key]
        for key in ("id", "name", "capacity", "response_window_hours", "offer_strategy", "parallel_offers")
        if key in values
    }
    if "categories" in values:
        record["categories"] = [_csv_category(item) for item in _split(values["categories"], ";")]
    if "markets" in values:
        record["markets"] = [market.upper() for market in _split(values["markets"], ";")]
    for key in ("sectors", "languages"):
        if key in values:
            record[key] = _split(values[key], ";")
    record["active"] = active
    record["contact"] = {
        key: values[f"contact_{key}"] for key in ("name", "email", "phone") if f"contact_{key}" in values
    }
    delivery = {"webhook_url": values.get("webhook_url"), "email": values.get("delivery_email")}
    record["delivery"] = {key: value for key, value in delivery.items() if value}
    return record


def _csv_category(item: str) -> dict[str, object]:
    category, _, specialties = item.partition(":")
    return {"category": category.strip().lower(), "specialties": _split(specialties, "|")}


def _split(cell: str, separator: str) -> list[str]:
    return [part.strip() for part in cell.split(separator) if part.strip()]


# --- JSON ---------------------------------------------------------------------------------------------------------


def _load_items(data: bytes, wrappers: tuple[str, ...], expected: str) -> list[object] | ImportRow:
    """The array of records in a JSON upload, or the file-level error row explaining why there is none."""
    try:
        document: object = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return _file_error(f"the file is not valid JSON: {exc}")
    items = _items(document, wrappers)
    return _file_error(f"expected {expected}") if items is None else items


def _items(document: object, wrappers: tuple[str, ...]) -> list[object] | None:
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        wrapped = next((document[key] for key in wrappers if key in document), None)
        return wrapped if isinstance(wrapped, list) else None
    return None


def _parse_json(data: bytes) -> Iterator[ImportRow]:
    items = _load_items(data, ("partners",), 'an array of partner objects, or {"partners": [...]}')
    if isinstance(items, ImportRow):
        yield items
        return
    for line, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            yield ImportRow(line, None, [FieldError("row", "each item must be a JSON object")])
        else:
            yield _validate(line, item, _dotted_path)


# --- HSDS 3.0 -----------------------------------------------------------------------------------------------------

# Keywords (whole words, case-insensitive) that map an HSDS service or taxonomy term name to a category.
CATEGORY_KEYWORDS: dict[ServiceCategory, tuple[str, ...]] = {
    ServiceCategory.LEGAL: ("legal", "law", "lawyer", "lawyers", "litigation", "solicitor", "attorney", "notary"),
    ServiceCategory.ACCOUNTING: ("accounting", "accountancy", "accountant", "audit", "auditing", "bookkeeping"),
    ServiceCategory.TAX: ("tax", "taxation", "vat", "transfer pricing"),
    ServiceCategory.BANKING_AND_FUND_MANAGEMENT: (
        "bank",
        "banking",
        "fund",
        "funds",
        "fund management",
        "asset management",
        "wealth management",
        "treasury",
    ),
    ServiceCategory.TALENT_RECRUITMENT: ("recruitment", "recruiting", "talent", "hiring", "headhunting", "staffing"),
    ServiceCategory.REGULATORY_COMPLIANCE: ("compliance", "regulatory", "licensing", "aml", "kyc"),
    ServiceCategory.INTELLECTUAL_PROPERTY: (
        "intellectual property",
        "ip",
        "patent",
        "patents",
        "trademark",
        "copyright",
    ),
    ServiceCategory.MARKET_ENTRY: ("market entry", "company formation", "incorporation", "business setup"),
    ServiceCategory.LOGISTICS: ("logistics", "freight", "shipping", "customs", "warehousing", "supply chain"),
    ServiceCategory.MARKETING: ("marketing", "advertising", "branding", "public relations", "pr"),
}
_CATEGORY_VALUES = frozenset(category.value for category in ServiceCategory)
_KEYWORD_PATTERNS = {
    category: re.compile(r"\b(?:" + "|".join(re.escape(word) for word in words) + r")\b", re.IGNORECASE)
    for category, words in CATEGORY_KEYWORDS.items()
}
# Common names pycountry does not know.
MARKET_ALIASES = {"UAE": "AE", "KSA": "SA", "UK": "GB", "TURKEY": "TR", "USA": "US", "RUSSIA": "RU"}
_DEFAULT_CAPACITY = 10
_MAX_SPECIALTIES = 20
_MAX_SPECIALTY_LENGTH = 80


def _parse_hsds(data: bytes) -> Iterator[ImportRow]:
    expected = 'an array of HSDS organization objects, {"organizations": [...]} or {"contents": [...]}'
    items = _load_items(data, ("organizations", "contents"), expected)
    if isinstance(items, ImportRow):
        yield items
        return
    for line, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            yield ImportRow(line, None, [FieldError("row", "each organization must be a JSON object")])
            continue
        record, errors = _hsds_record(item)
        yield _validate(line, record, _flat_name, errors)


def _hsds_record(org: dict[str, object]) -> tuple[dict[str, object], list[FieldError]]:
    services = _objects(org.get("services"))
    markets, errors = _hsds_markets(services)
    categories = _hsds_categories(services)
    if not categories:
        known = ", ".join(ServiceCategory)
        errors.append(FieldError("categories", f"no service maps to a category; tag services with one of: {known}"))
    record: dict[str, object] = {
        "name": _text(org.get("name")),
        "categories": categories,
        "markets": markets,
        "languages": list(dict.fromkeys(_hsds_languages(services))),
        "capacity": org.get("x-goglobal-capacity", _DEFAULT_CAPACITY),
        "contact": _hsds_contact(org),
    }
    org_id = _slug(_text(org.get("id")) or "")
    if org_id:
        record["id"] = org_id
    return {key: value for key, value in record.items() if value is not None}, errors


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].rstrip("-")


def _hsds_categories(services: list[dict[str, object]]) -> list[dict[str, object]]:
    specialties: dict[ServiceCategory, list[str]] = {}
    for service in services:
        name = _text(service.get("name")) or ""
        for category in _service_categories(service, name):
            names = specialties.setdefault(category, [])
            specialty = name.lower()[:_MAX_SPECIALTY_LENGTH].strip()
            if specialty and not _only_keywords(specialty, category) and specialty not in names:
                names.append(specialty)
    return [{"category": category, "specialties": names[:_MAX_SPECIALTIES]} for category, names in specialties.items()]


def _service_categories(service: dict[str, object], name: str) -> list[ServiceCategory]:
    attributes = _objects(service.get("attributes"))
    terms = _objects([attribute.get("taxonomy_term") for attribute in attributes])
    found: list[ServiceCategory] = []
    for term in terms:
        found += _term_categories(_text(term.get("code")) or "", _text(term.get("name")) or "")
    return list(dict.fromkeys(found or _keyword_categories(name)))


def _term_categories(code: str, name: str) -> list[ServiceCategory]:
    for text in (code, name):
        normalised = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
        if normalised in _CATEGORY_VALUES:
            return [ServiceCategory(normalised)]
    return _keyword_categories(name)


def _keyword_categories(text: str) -> list[ServiceCategory]:
    return [category for category, pattern in _KEYWORD_PATTERNS.items() if pattern.search(text)]


def _only_keywords(text: str, category: ServiceCategory) -> bool:
    """Whether a service name says no more than its category ("Tax", "Legal services")."""
    leftover = _KEYWORD_PATTERNS[category].sub(" ", text)
    return not re.sub(r"\b(?:and|services?|advice|support)\b|[^a-z0-9]+", "", leftover)


def _hsds_markets(services: list[dict[str, object]]) -> tuple[list[str], list[FieldError]]:
    markets: list[str] = []
    errors: list[FieldError] = []
    for area in (area for service in services for area in _objects(service.get("service_areas"))):
        name = _text(area.get("name"))
        if name is None and _text(area.get("extent_type")) == "text":
            name = _text(area.get("extent"))
        market = _resolve_market(name) if name else None
        if market is None:
            errors.append(FieldError("markets", f"service area {name!r} is not a known country or region"))
        elif market not in markets:
            markets.append(market)
    return markets, errors


def _resolve_market(name: str) -> str | None:
    """A market code for a service area name: region name, ISO code, country name or alias."""
    upper = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
    if upper in REGIONS:
        return upper
    if upper in MARKET_ALIASES:
        return MARKET_ALIASES[upper]
    try:
        code = str(pycountry.countries.lookup(name.strip()).alpha_2)
    except LookupError:
        return None
    return code if is_market(code) else None


def _hsds_languages(services: list[dict[str, object]]) -> list[str]:
    codes = (_text(language.get("code")) for service in services for language in _objects(service.get("languages")))
    return [code for code in codes if code]


def _hsds_contact(org: dict[str, object]) -> dict[str, object]:
    contacts = _objects(org.get("contacts"))
    person = contacts[0] if contacts else {}
    contact = {
        "name": _text(person.get("name")) or _text(org.get("name")),
        "email": _text(person.get("email")) or _text(org.get("email")),
        "phone": _first_phone(person) or _first_phone(org),
    }
    return {key: value for key, value in contact.items() if value}


def _first_phone(holder: dict[str, object]) -> str | None:
    phones = _objects(holder.get("phones"))
    number = _text(phones[0].get("number")) if phones else None
    # HSDS publishers format numbers for people; E.164 only allows the digits.
    if number and number.startswith("+"):
        return re.sub(r"[\s.\-()]", "", number)
    return number


def _objects(value: object) -> list[dict[str, object]]:
    """The JSON objects in a list, ignoring anything else: HSDS data in the wild is loosely typed."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None

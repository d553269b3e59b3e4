"""Partner import from CSV, JSON and HSDS 3.0 files."""

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake.domain.partner_import import (
    COLUMNS,
    REQUIRED_COLUMNS,
    FieldError,
    ImportFormat,
    ImportRow,
    detect_format,
    parse_partners,
)

FIXTURES = Path(__file__).parent / "fixtures"
HEADER = ",".join(COLUMNS)
GOOD_CELLS = (
    "p-{n},Partner {n},legal,AE,,en,5,,,,,Chan Tai Man,chan@example.hk,+85221234567,,"  # one cell per COLUMNS entry
)


def parse(data: bytes, fmt: ImportFormat) -> list[ImportRow]:
    return list(parse_partners(data, fmt))


def csv_file(*rows: str) -> bytes:
    return "\n".join([HEADER, *rows]).encode()


def fields(row: ImportRow) -> set[str]:
    return {error.field for error in row.errors}


# --- CSV ----------------------------------------------------------------------------------------------------------


def test_csv_fixture_good_rows_are_parsed_and_bad_rows_name_line_and_column() -> None:
    rows = parse((FIXTURES / "partners.csv").read_bytes(), "csv")
    assert [row.line for row in rows] == [2, 3, 5, 6]  # line 4 is blank

    harbour = rows[0].partner
    assert harbour is not None
    assert harbour.id == "harbour-legal"
    assert [(c.category, c.specialties) for c in harbour.categories] == [
        ("legal", ["company formation", "commercial contracts"]),
        ("regulatory_compliance", []),
    ]
    assert harbour.markets == ["AE", "SA", "QA"]
    assert harbour.sectors == ["C", "G46"]
    assert harbour.contact.email == "referrals@harbourlegal.example.hk"
    assert str(harbour.delivery.webhook_url) == "https://hooks.harbourlegal.example.hk/goglobal"

    lion_rock = rows[2].partner
    assert lion_rock is not None
    assert lion_rock.name == "Lion Rock Accounting, Tax & Advisory"
    assert (lion_rock.offer_strategy, lion_rock.parallel_offers, lion_rock.active) == ("parallel", 3, False)
    assert lion_rock.languages == ["zh-Hant", "en"]
    assert lion_rock.delivery.email == "desk@lionrock.example.hk"

    assert rows[1].partner is None
    assert fields(rows[1]) == {"markets", "contact_email"}
    assert fields(rows[3]) == {"active", "parallel_offers", "contact_phone", "webhook_url"}


def test_csv_errors_use_column_names_and_show_the_value() -> None:
    [row] = parse(csv_file(GOOD_CELLS.format(n=1).replace("chan@example.hk", "chan-at-example")), "csv")
    [error] = row.errors
    assert error.field == "contact_email"
    assert "'chan-at-example'" in error.message


def test_csv_empty_required_cells_are_reported_as_required() -> None:
    [row] = parse(csv_file(GOOD_CELLS.format(n=1).replace(",5,", ",,").replace(",en,", ",,")), "csv")
    assert row.errors == [
        FieldError("languages", "required, but missing or empty"),
        FieldError("capacity", "required, but missing or empty"),
    ]


def test_csv_header_is_case_insensitive_and_column_order_is_free() -> None:
    header = ",".join(reversed([column.upper() for column in COLUMNS]))
    cells = ",".join(reversed(GOOD_CELLS.format(n=1).split(",")))
    [row] = parse(f"{header}\n{cells}\n".encode(), "csv")
    assert row.partner is not None
    assert row.partner.id == "p-1"


def test_csv_optional_columns_may_be_left_out() -> None:
    header = ",".join(REQUIRED_COLUMNS)
    [row] = parse(f"{header}\np-1,P,tax,SG,en,3,Chan,chan@example.hk,+85221234567\n".encode(), "csv")
    assert row.partner is not None
    assert row.partner.response_window_hours == 48


def test_csv_missing_required_column_is_one_error_row_at_the_header() -> None:
    header = ",".join(column for column in COLUMNS if column not in {"capacity", "contact_email"})
    rows = parse(f"{header}\nwhatever\n".encode(), "csv")
    assert len(rows) == 1
    assert rows[0].line == 1
    assert rows[0].errors == [
        FieldError("capacity", "required column is missing from the header"),
        FieldError("contact_email", "required column is missing from the header"),
    ]


def test_csv_unknown_and_repeated_columns_are_header_errors() -> None:
    [row] = parse(f"{HEADER},fax,id\n".encode(), "csv")
    assert row.line == 1
    assert [error.field for error in row.errors] == ["fax", "id"]


def test_csv_line_numbers_count_physical_lines() -> None:
    multi_line_name = GOOD_CELLS.format(n=1).replace("Partner 1", '"Partner\n1"')
    rows = parse(csv_file(multi_line_name, "", GOOD_CELLS.format(n=2), "too,few"), "csv")
    assert [row.line for row in rows] == [2, 5, 6]
    assert rows[0].partner is not None
    assert rows[0].partner.name == "Partner\n1"
    assert rows[2].partner is None


def test_csv_rows_with_too_many_cells_are_rejected() -> None:
    [row] = parse(csv_file(GOOD_CELLS.format(n=1) + ",extra"), "csv")
    assert fields(row) == {"row"}


def test_csv_repeated_id_is_an_error_on_the_later_row() -> None:
    rows = parse(csv_file(GOOD_CELLS.format(n=1), GOOD_CELLS.format(n=1)), "csv")
    assert rows[0].partner is not None
    assert rows[1].errors == [FieldError("id", "id 'p-1' is already used by the record at line 2")]


def test_csv_must_be_utf8() -> None:
    [row] = parse("id,name\n".encode("utf-16"), "csv")
    assert (row.line, fields(row)) == (0, {"file"})


def test_csv_byte_order_mark_is_allowed() -> None:
    [row] = parse(b"\xef\xbb\xbf" + csv_file(GOOD_CELLS.format(n=1)), "csv")
    assert row.partner is not None


def test_empty_csv_says_the_header_is_missing() -> None:
    [row] = parse(b"", "csv")
    assert (row.line, fields(row)) == (1, {"header"})


# --- JSON ---------------------------------------------------------------------------------------------------------


def test_json_fixture() -> None:
    rows = parse((FIXTURES / "partners.json").read_bytes(), "json")
    assert [row.line for row in rows] == [1, 2, 3, 4]
    assert [row.partner.id for row in rows if row.partner] == ["harbour-legal", "victoria-ip"]
    assert fields(rows[2]) == {"delivery.webhook_url", "fax"}
    assert fields(rows[3]) == {"row"}


def test_json_plain_array() -> None:
    document = json.loads((FIXTURES / "partners.json").read_bytes())
    rows = parse(json.dumps(document["partners"][:2]).encode(), "json")
    assert [row.partner.id for row in rows if row.partner] == ["harbour-legal", "victoria-ip"]


@pytest.mark.parametrize("data", [b"{not json", b'{"partner": []}', b'"partners"', b"\xff\xfe\x00"])
def test_json_file_errors(data: bytes) -> None:
    [row] = parse(data, "json")
    assert (row.line, fields(row)) == (0, {"file"})


def test_empty_json_array_yields_nothing() -> None:
    assert parse(b"[]", "json") == []


# --- HSDS ---------------------------------------------------------------------------------------------------------


def test_hsds_fixture_maps_organizations_to_partners() -> None:
    rows = parse((FIXTURES / "hsds_organizations.json").read_bytes(), "hsds")
    kowloon, straits, atlantis = (row.partner for row in rows)

    assert kowloon is not None
    assert kowloon.id == "7f3c2a9e-hk-legal"
    assert [c.category for c in kowloon.categories] == ["legal", "regulatory_compliance"]
    assert kowloon.categories[0].specialties == ["free zone company set-up"]  # "Legal services" adds nothing
    assert kowloon.markets == ["AE", "SA", "MIDDLE_EAST"]
    assert kowloon.languages == ["zh-Hant", "en", "ar"]
    assert kowloon.capacity == 10
    assert (kowloon.contact.name, kowloon.contact.email, kowloon.contact.phone) == (
        "Cheung Ka Ho",
        "ka.ho@kowloongulf.example.hk",
        "+85228101234",
    )

    assert straits is not None
    assert [(c.category, c.specialties) for c in straits.categories] == [
        ("accounting", ["monthly bookkeeping and audit preparation"]),
        ("tax", []),
    ]
    assert straits.markets == ["ASEAN", "SG", "VN"]
    assert straits.capacity == 40
    assert (straits.contact.name, straits.contact.email) == ("Straits Ledger & Tax", "desk@straitsledger.example.hk")

    assert atlantis is None
    assert rows[2].errors == [FieldError("markets", "service area 'Atlantis' is not a known country or region")]


def organization(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "org-1",
        "name": "Org One",
        "email": "one@example.hk",
        "phones": [{"number": "+85221234567"}],
        "services": [{"name": "Patent filing", "service_areas": [{"name": "UAE"}], "languages": [{"code": "en"}]}],
        **overrides,
    }


def test_hsds_plain_array_and_service_name_keywords() -> None:
    [row] = parse(json.dumps([organization()]).encode(), "hsds")
    assert row.partner is not None
    assert [(c.category, c.specialties) for c in row.partner.categories] == [
        ("intellectual_property", ["patent filing"])
    ]
    assert row.partner.markets == ["AE"]


def test_hsds_service_without_a_category_is_reported() -> None:
    services = [{"name": "Community gardening", "service_areas": [{"name": "SG"}], "languages": [{"code": "en"}]}]
    [row] = parse(json.dumps([organization(services=services)]).encode(), "hsds")
    assert fields(row) == {"categories"}


def test_hsds_bad_organizations_do_not_stop_the_others() -> None:
    document = {"contents": [organization(id="a"), "junk", organization(id="org-2", email="nope", phones=[])]}
    rows = parse(json.dumps(document).encode(), "hsds")
    assert [row.line for row in rows] == [1, 2, 3]
    assert all(row.partner is None for row in rows)
    assert fields(rows[0]) == {"id"}  # "a" is too short for a partner id
    assert fields(rows[1]) == {"row"}
    assert fields(rows[2]) == {"contact_email", "contact_phone"}


# --- format detection ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("partners.CSV", None, "csv"),
        ("upload", "text/csv; charset=utf-8", "csv"),
        ("upload", "application/vnd.ms-excel", "csv"),
        ("partners.json", "application/octet-stream", "json"),
        ("upload", "application/json", "json"),
    ],
)
def test_detect_format_from_name_and_type(filename: str, content_type: str | None, expected: str) -> None:
    assert detect_format(filename, content_type) == expected


def test_detect_format_recognises_hsds_content() -> None:
    hsds = (FIXTURES / "hsds_organizations.json").read_bytes()
    assert detect_format("orgs.json", None, hsds) == "hsds"
    assert detect_format("orgs.json", None, json.dumps([organization()]).encode()) == "hsds"
    assert detect_format("partners.json", None, (FIXTURES / "partners.json").read_bytes()) == "json"
    assert detect_format("broken.json", None, b"{") == "json"


def test_detect_format_honours_a_declared_format() -> None:
    assert detect_format("anything.txt", None, declared="HSDS") == "hsds"
    with pytest.raises(ValueError, match="unknown import format"):
        detect_format("partners.csv", None, declared="xlsx")


def test_detect_format_refuses_to_guess() -> None:
    with pytest.raises(ValueError, match="cannot tell the format"):
        detect_format("partners.xlsx", "application/octet-stream")


def test_parse_partners_refuses_unknown_formats() -> None:
    with pytest.raises(ValueError, match="unknown import format"):
        parse_partners(b"", "xml")  # type: ignore[arg-type]


# --- robustness ---------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
hsds_keys = st.sampled_from(["id", "name", "email", "phones", "services", "contacts", "x-goglobal-capacity"])
hsds_organizations = st.dictionaries(hsds_keys, json_values, max_size=7)


def assert_well_formed(rows: list[ImportRow]) -> None:
    for row in rows:
        assert (row.partner is None) == bool(row.errors)


@settings(max_examples=300)
@given(data=st.binary(max_size=300), fmt=st.sampled_from(["csv", "json", "hsds"]))
def test_arbitrary_bytes_never_raise(data: bytes, fmt: ImportFormat) -> None:
    assert_well_formed(parse(data, fmt))


@given(text=st.text(max_size=300))
def test_arbitrary_csv_text_never_raises(text: str) -> None:
    assert_well_formed(parse((HEADER + "\n" + text).encode(), "csv"))


@given(document=json_values, fmt=st.sampled_from(["json", "hsds"]))
def test_arbitrary_json_never_raises(document: object, fmt: ImportFormat) -> None:
    assert_well_formed(parse(json.dumps(document).encode(), fmt))


@given(organizations=st.lists(hsds_organizations, max_size=3))
def test_arbitrary_hsds_organizations_never_raise(organizations: list[dict[str, Any]]) -> None:
    assert_well_formed(parse(json.dumps(organizations).encode(), "hsds"))

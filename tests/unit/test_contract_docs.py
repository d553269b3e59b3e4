"""The published contract (docs/asyncapi.yaml, docs/schemas/*.json) is what the code generates.

When one of these fails after a change to the payload models, regenerate with
`python -m tools.asyncapi --out docs` (`make docs`) and commit the result.
"""

from pathlib import Path
from typing import Any

import pytest
import yaml

from goglobal_contract.event_base import EventPayload
from goglobal_contract.registry import PAYLOADS
from tools import asyncapi

DOCS = Path(__file__).resolve().parents[2] / "docs"
REGENERATE = "out of date: run `python -m tools.asyncapi --out docs` and commit docs/"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return asyncapi.render()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCS / asyncapi.ASYNCAPI_FILE).read_text("utf-8"))
    return loaded


def test_committed_asyncapi_document_is_what_the_code_generates(generated: dict[str, str]) -> None:
    committed = (DOCS / asyncapi.ASYNCAPI_FILE).read_text("utf-8")
    assert committed == generated[asyncapi.ASYNCAPI_FILE], f"docs/{asyncapi.ASYNCAPI_FILE} is {REGENERATE}"


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_committed_schema_is_what_the_code_generates(event_type: str, generated: dict[str, str]) -> None:
    path = f"{asyncapi.SCHEMA_DIR}/{event_type}.json"
    committed = DOCS / path
    assert committed.is_file(), f"docs/{path} is missing: {REGENERATE}"
    assert committed.read_text("utf-8") == generated[path], f"docs/{path} is {REGENERATE}"


def test_no_schema_file_for_a_type_outside_the_contract(generated: dict[str, str]) -> None:
    assert asyncapi.stale_schemas(DOCS, generated) == [], f"stale schema files: {REGENERATE}"


def test_generator_check_agrees() -> None:
    assert asyncapi.differences(DOCS) == []


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_example_validates_against_its_model(event_type: str) -> None:
    cls: type[EventPayload] = PAYLOADS[event_type]
    example = asyncapi.EXAMPLES[cls]
    payload = cls.model_validate(example.data)
    assert payload.model_dump(mode="json") == asyncapi.example_payload(cls)


def test_every_example_belongs_to_the_contract() -> None:
    assert set(asyncapi.EXAMPLES) == set(PAYLOADS.values())


def test_document_is_asyncapi_3(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert "v2" in document["info"]["description"]
    assert set(document["servers"]) == {"production", "local"}


def test_every_event_type_is_a_message_on_a_channel(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    on_channels = {name for channel in document["channels"].values() for name in channel["messages"]}
    for event_type in PAYLOADS:
        assert event_type in messages, event_type
        assert event_type in on_channels, event_type
        message = messages[event_type]
        assert message["name"] == event_type
        assert message["contentType"] == "application/json"
        assert message["headers"]["properties"]["ce_type"]["const"] == event_type
        assert message["examples"], event_type
        schema = message["payload"]["$ref"].rsplit("/", 1)[-1]
        assert document["components"]["schemas"][schema]["x-cloudevents-type"] == event_type


def test_every_operation_references_messages_of_its_channel(document: dict[str, Any]) -> None:
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        for ref in operation["messages"]:
            prefix = f"#/channels/{channel}/messages/"
            assert ref["$ref"].startswith(prefix), name
            assert ref["$ref"].removeprefix(prefix) in document["channels"][channel]["messages"], name


def test_partner_topic_is_parameterised(document: dict[str, Any]) -> None:
    assert document["channels"]["partner"]["address"] == "goglobal.partner.{partnerId}"
    assert "partnerId" in document["channels"]["partner"]["parameters"]


def test_check_reports_a_stale_and_a_changed_file(tmp_path: Path) -> None:
    asyncapi.write(tmp_path)
    assert asyncapi.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / asyncapi.SCHEMA_DIR / "hk.goglobal.gone.v1.json").write_text("{}\n")
    (tmp_path / asyncapi.ASYNCAPI_FILE).write_text("asyncapi: 3.0.0\n")
    assert asyncapi.differences(tmp_path) == [asyncapi.ASYNCAPI_FILE, f"{asyncapi.SCHEMA_DIR}/hk.goglobal.gone.v1.json"]
    assert asyncapi.main(["--out", str(tmp_path), "--check"]) == 1
    asyncapi.write(tmp_path)
    assert asyncapi.differences(tmp_path) == []

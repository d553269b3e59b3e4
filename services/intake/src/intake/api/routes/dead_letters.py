"""Dead letters for operators: list, inspect, replay one, or replay all that match a filter."""

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from goglobal_shared.problems import Problem
from intake.api.deps import DeadLettersDep, IntakeDep, OperatorDep
from intake.service_layer.dead_letters import SENT
from intake.service_layer.errors import NotFound
from intake.service_layer.ports import LetterFilter

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])
LetterId = Annotated[str, Path(max_length=300, description="<original topic>:<partition>:<offset>")]


class Replay(BaseModel):
    by: str
    at: datetime
    result: str


class DeadLetterOut(BaseModel):
    id: str
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    error_class: str
    error_message: str
    attempts: int
    event_type: str | None
    event_id: str | None
    status: Literal["open", "replayed"]
    dead_lettered_at: datetime
    replays: list[Replay]


class DeadLetterDetail(DeadLetterOut):
    key: str | None = Field(description="the record key, as text")
    value: str | None = Field(description="the record value: text when it is UTF-8, else base64")
    value_encoding: Literal["utf-8", "base64", "none"]
    value_truncated: bool = Field(
        default=False,
        description="the record was too big to copy whole: its value (see the dlq_original_value_bytes header) was "
        "left out, so it cannot be replayed; the producer must send it again",
    )
    headers: dict[str, str]


class ReplayFilter(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"topic": "goglobal.referrals", "error_class": "PermanentEventError", "since": "2026-11-25T00:00:00Z"}
            ]
        },
    )

    topic: str | None = None
    error_class: str | None = None
    since: datetime | None = None


class ReplayResult(BaseModel):
    replayed: int
    results: dict[str, str]


def _out(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "id": doc["_id"]}


def _detail(doc: dict[str, Any]) -> DeadLetterDetail:
    value: bytes | None = doc.get("value")
    try:
        text, encoding = (value.decode(), "utf-8") if value is not None else (None, "none")
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(value or b"").decode(), "base64"
    headers = {h["name"]: base64.b64decode(h["value"]).decode(errors="replace") for h in doc["headers"]}
    key = doc["key"].decode(errors="replace") if doc.get("key") is not None else None
    return DeadLetterDetail.model_validate(
        {**_out(doc), "key": key, "value": text, "value_encoding": encoding, "headers": headers}
    )


@router.get("", response_model=list[DeadLetterOut])
async def list_dead_letters(
    principal: OperatorDep,
    intake: IntakeDep,
    topic: str | None = None,
    error_class: str | None = None,
    status: Literal["open", "replayed"] | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeadLetterOut]:
    """Newest first."""
    docs = await intake.dead_letters.page(LetterFilter(topic, error_class, status, since), limit)
    return [DeadLetterOut.model_validate(_out(d)) for d in docs]


@router.get("/{letter_id}", response_model=DeadLetterDetail, responses={404: {"model": Problem}})
async def show_dead_letter(letter_id: LetterId, principal: OperatorDep, intake: IntakeDep) -> DeadLetterDetail:
    doc = await intake.dead_letters.get(letter_id)
    if doc is None:
        raise NotFound("dead-letter", letter_id)
    return _detail(doc)


@router.post("/{letter_id}/replay", response_model=ReplayResult, responses={404: {"model": Problem}})
async def replay_one(letter_id: LetterId, principal: OperatorDep, replays: DeadLettersDep) -> ReplayResult:
    result = await replays.one(letter_id, principal.label)
    return ReplayResult(replayed=int(result == SENT), results={letter_id: result})


@router.post("/replay", response_model=ReplayResult)
async def replay_matching(body: ReplayFilter, principal: OperatorDep, replays: DeadLettersDep) -> ReplayResult:
    """Replays every open dead letter that matches the filter (all open ones if the filter is empty)."""
    where = LetterFilter(body.topic, body.error_class, since=body.since)
    results = await replays.open_ones(where, principal.label)
    return ReplayResult(replayed=sum(r == SENT for r in results.values()), results=results)

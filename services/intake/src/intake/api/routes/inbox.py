"""The inbox: notifications for partners (and enterprises) without any integration of their own."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from goglobal_shared.problems import Problem
from intake.api.deps import IntakeDep, PrincipalDep
from intake.auth.keys import Role
from intake.service_layer.errors import NotFound

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])


class InboxItem(BaseModel):
    notification_id: str
    referral_id: str | None
    kind: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


def _recipient(role: Role, subject_id: str) -> str:
    return "operators" if role is Role.OPERATOR else subject_id


def _item(doc: dict[str, Any]) -> InboxItem:
    return InboxItem.model_validate(doc)


@router.get("", response_model=list[InboxItem])
async def list_inbox(
    principal: PrincipalDep,
    intake: IntakeDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[datetime | None, Query(description="created before (next page)")] = None,
) -> list[InboxItem]:
    """Newest first. Operators share one inbox (e.g. disabled webhook endpoints)."""
    docs = await intake.notifications.inbox_page(
        _recipient(principal.role, principal.subject_id), unread, limit, before
    )
    return [_item(d) for d in docs]


@router.post("/{notification_id}/read", response_model=InboxItem, responses={404: {"model": Problem}})
async def mark_read(
    notification_id: Annotated[str, Path(max_length=64)], principal: PrincipalDep, intake: IntakeDep
) -> InboxItem:
    doc = await intake.notifications.mark_read(
        _recipient(principal.role, principal.subject_id), notification_id, intake.clock()
    )
    if doc is None:
        raise NotFound("notification", notification_id)
    return _item(doc)

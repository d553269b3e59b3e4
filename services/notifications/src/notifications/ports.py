"""What notifications' use cases (`notifications.service`) need from the world, and nothing more. The real
adapters are in `adapters/` (MongoDB, Kafka), `webhooks.sender` (HTTP), `email.smtp` (SMTP) and `handoff` (the
dispatcher's in-memory queue); tests/service/notifications has in-memory fakes of them."""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from goglobal_contract.envelope import Envelope
from goglobal_contract.events import EnterpriseUpserted, PartnerUpserted, ReferralSubmitted
from notifications.email.render import RenderedEmail
from notifications.fanout import Referral
from notifications.records import Document
from notifications.webhooks.policy import AttemptResult

Clock = Callable[[], datetime]


class Directory(Protocol):
    """Where and how to reach each partner and enterprise: copies kept current from their `upserted` events, the
    highest version winning. A partner's new webhook URL is a new endpoint: its health record goes."""

    async def partner(self, partner_id: str) -> Document | None: ...

    async def partners(self, partner_ids: list[str]) -> dict[str, Document]:
        """Those of `partner_ids` the directory holds, by id."""

    async def enterprise(self, enterprise_id: str) -> Document | None: ...

    async def apply_partner(self, event: PartnerUpserted) -> None: ...

    async def apply_enterprise(self, event: EnterpriseUpserted) -> None: ...


class Referrals(Protocol):
    """What notifications remembers of each referral; a repeated `submitted` keeps the first."""

    async def submitted(self, event: ReferralSubmitted) -> None: ...

    async def accepted(self, referral_id: str, partner_id: str) -> None: ...

    async def get(self, referral_id: str) -> Referral | None: ...


class Deliveries(Protocol):
    """Deliveries by id, each changed by compare-and-set on its version."""

    async def create(self, delivery: Document) -> bool:
        """False when a delivery with this id exists already."""

    async def create_many(self, deliveries: list[Document]) -> set[str]:
        """The ids of those created (in one write); one whose id exists already is left as it is."""

    async def get_many(self, delivery_ids: list[str]) -> list[Document]: ...

    async def due(self, now: datetime, limit: int = 50) -> list[Document]: ...

    async def claim(self, due: Document, now: datetime) -> Document | None:
        """The delivery, its next attempt a lease ahead, if nobody changed it since it was read due."""

    async def record(
        self, delivery: Document, attempt: Document, status: str, next_attempt_at: datetime | None, now: datetime
    ) -> Document:
        """Adds the attempt and its outcome (re-applied on the latest document if it changed meanwhile)."""

    async def reschedule(
        self, delivery_ids: list[str], partner_id: str | None, failed_since: datetime | None, now: datetime
    ) -> int:
        """Failed or disabled deliveries (those named, or all) go out again now, with a fresh retry schedule."""

    async def hold_webhooks(self, partner_id: str, now: datetime) -> int:
        """The partner's pending webhooks wait, as `disabled`, for a redelivery."""


class Endpoints(Protocol):
    """One record per failing or disabled webhook endpoint; none while it works."""

    async def state(self, partner_id: str) -> Document | None: ...

    async def failing(self, partner_id: str, url: str, now: datetime) -> Document:
        """The endpoint's record, created at its first failure."""

    async def disable(self, record: Document, reason: str, now: datetime) -> bool:
        """Compare-and-set on the record's version: True for the one caller that disabled it."""

    async def succeeded(self, partner_id: str) -> None:
        """A failing (not disabled) endpoint works again."""

    async def enable(self, partner_id: str) -> None: ...

    async def enable_all(self) -> None: ...


class Publisher(Protocol):
    """Each returns once the broker acknowledged the event."""

    async def to_partner(self, partner_id: str, envelope: Envelope) -> None:
        """On the partner's own topic."""

    async def notification(self, envelope: Envelope) -> None:
        """On `goglobal.notifications`: inbox items, delivery outcomes, disabled endpoints."""


class Webhooks(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """One attempt; raises `errors.TargetRefused` for a target a webhook must never reach."""


class Mailer(Protocol):
    async def send(self, to: str, rendered: RenderedEmail, message_id: str, language: str) -> None:
        """Raises `errors.TransientEmailError` (try again later) or `errors.PermanentEmailError`."""


class DispatchQueue(Protocol):
    """This process's dispatcher (`handoff.Handoff`)."""

    def put(self, delivery: Document, partner: Document) -> None:
        """`delivery` was created claimed by this process: attempt it now, addressed from `partner`."""

    def wake(self) -> None:
        """Deliveries became due in the store: look for them now."""

"""Typed dispatch on an event's payload class: the one place where an event's type chooses what runs.

A handler is registered for a payload class with the exact type it takes, `(event: T, context) -> R`, and the
registry calls it with the payload narrowed to that class; nothing downstream tests types again. `EventRouter`
is the consumer's form (the context is the envelope, the result an awaitable); `PayloadDispatch` is the same for
any other context, e.g. intake applying matching's decisions to a request it holds.

A handler also says whether it makes a repeat of its event a no-op by itself (`self_deduplicating`: its effect
is keyed by the event id, or the document it changes remembers the ids applied); the consumer then neither
reads nor writes the processed-event log for that type (goglobal_shared.consumer).
"""

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Generic, TypeVar

from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
from goglobal_shared.errors import PermanentEventError

P = TypeVar("P", bound=EventPayload)
C = TypeVar("C")
R = TypeVar("R")

Handler = Callable[[Envelope], Awaitable[None]]  # what a consumer calls with each event of a routed type


class PayloadDispatch(Generic[C, R]):
    """Functions of (payload, context) by payload class."""

    def __init__(self) -> None:
        self._by_type: dict[str, Callable[[EventPayload, C], R]] = {}

    def on(self, payload: type[P], handler: Callable[[P, C], R]) -> None:
        if payload.event_type in self._by_type:
            raise ValueError(f"{payload.event_type} has a handler already")

        def narrowed(event: EventPayload, context: C) -> R:
            if not isinstance(event, payload):  # a payload class the contract maps to another type: a bug
                raise PermanentEventError(f"{payload.event_type} carries a {type(event).__name__}")
            return handler(event, context)

        self._by_type[payload.event_type] = narrowed

    def include(self, other: "PayloadDispatch[C, R]") -> None:
        for event_type in other._by_type:
            if event_type in self._by_type:
                raise ValueError(f"{event_type} has a handler already")
        self._by_type.update(other._by_type)

    def __call__(self, event: EventPayload, context: C) -> R:
        return self._by_type[event.event_type](event, context)

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._by_type

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self._by_type)


class EventRouter:
    """What a consumer does with each event type it takes: `(event: T, envelope) -> None` by payload class."""

    def __init__(self) -> None:
        self._dispatch: PayloadDispatch[Envelope, Awaitable[None]] = PayloadDispatch()
        self._self_deduplicating: set[str] = set()

    def on(
        self,
        payloads: type[P] | Iterable[type[P]],
        handler: Callable[[P, Envelope], Awaitable[None]],
        *,
        self_deduplicating: bool = False,
    ) -> None:
        for payload in [payloads] if isinstance(payloads, type) else payloads:
            self._dispatch.on(payload, handler)
            if self_deduplicating:
                self._self_deduplicating.add(payload.event_type)

    def include(self, other: "EventRouter") -> None:
        """Takes every route of `other` (one consumer serving several routers' types)."""
        self._dispatch.include(other._dispatch)
        self._self_deduplicating |= other._self_deduplicating

    async def handle(self, envelope: Envelope) -> None:
        await self._dispatch(envelope.data, envelope)

    @property
    def types(self) -> frozenset[str]:
        return self._dispatch.types

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """The consumer's view: one envelope handler per event type."""
        return {event_type: self.handle for event_type in self.types}

    @property
    def self_deduplicating(self) -> frozenset[str]:
        return frozenset(self._self_deduplicating)

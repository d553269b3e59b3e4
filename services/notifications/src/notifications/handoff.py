"""What the notifier gives the dispatcher to do now.

A webhook delivery is created already claimed by this process (its next attempt a lease ahead, like a claim
makes it), and handed over in memory with the partner it was addressed from: the dispatcher attempts it at once,
with no query for due deliveries, no claim and no second read of the partner. If the process dies first, the
delivery is due again when the lease ends, and any replica attempts it then. Other work (e-mails, retries) is
found by the dispatcher's query for due deliveries, which `wake` asks for now rather than at its next pass."""

import asyncio
from dataclasses import dataclass, field

from goglobal_shared.mongo import Document


@dataclass
class Handoff:
    _ready: list[tuple[Document, Document]] = field(default_factory=list)
    _due_wanted: bool = False
    signal: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, delivery: Document, partner: Document) -> None:
        """`delivery` was created claimed by this process; `partner` is the directory entry it was addressed from."""
        self._ready.append((delivery, partner))
        self.signal.set()

    def wake(self) -> None:
        """Deliveries became due in the database: look for them now."""
        self._due_wanted = True
        self.signal.set()

    def take(self) -> tuple[list[tuple[Document, Document]], bool]:
        """The handed-over deliveries, and whether a query for due ones was asked for; both reset."""
        self.signal.clear()
        ready, due_wanted = self._ready, self._due_wanted
        self._ready, self._due_wanted = [], False
        return ready, due_wanted

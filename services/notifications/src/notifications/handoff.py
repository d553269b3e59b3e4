"""What the use cases (`notifications.service`) give this process's dispatcher to do now: the dispatch-queue port.

A webhook delivery is created already claimed by this process (its next attempt a lease ahead, like a claim
makes it), and handed over in memory with the partner it was addressed from: the dispatcher attempts it at once,
with no query for due deliveries, no claim and no second read of the partner. If the process dies first, the
delivery is due again when the lease ends, and any replica attempts it then. Other work (e-mails, retries) is
found by the dispatcher's query for due deliveries, which `wake` asks for now rather than at its next pass."""

from dataclasses import dataclass, field

from goglobal_shared.mongo import Document
from goglobal_shared.periodic import Wakeup


@dataclass
class Handoff:
    """Holds the dispatcher's `Wakeup` (its task waits on it), so the service, built first, needs no dispatcher."""

    _ready: list[tuple[Document, Document]] = field(default_factory=list)
    wakeup: Wakeup = field(default_factory=Wakeup)

    def put(self, delivery: Document, partner: Document) -> None:
        """`delivery` was created claimed by this process; `partner` is the directory entry it was addressed from."""
        self._ready.append((delivery, partner))
        self.wakeup.nudge()

    def wake(self) -> None:
        """Deliveries became due in the database: look for them now."""
        self.wakeup.wake()

    def take(self) -> list[tuple[Document, Document]]:
        """The handed-over deliveries; none are held after."""
        ready, self._ready = self._ready, []
        return ready

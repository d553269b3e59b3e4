"""The dispatcher's loop: attempts what this process's writes hand over as they come (`handoff`), and claims and
attempts what is due in the store on a clock or when woken. Each attempt is `NotificationService.deliver`; one
that crashes is logged and found again (a handed delivery when its lease ends, a due one at the next pass)."""

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from goglobal_shared.mongo import Document
from goglobal_shared.periodic import LoopOwner, Outcome, PeriodicTask
from notifications.handoff import Handoff
from notifications.service import NotificationService

log = logging.getLogger(__name__)


@dataclass
class Dispatcher(LoopOwner):
    service: NotificationService
    handoff: Handoff
    interval_s: float = 0.5
    loop: PeriodicTask = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.loop = PeriodicTask(
            "delivery dispatcher",
            self._due_pass,
            self.interval_s,
            hand_over=self._attempt_handed,
            wakeup=self.handoff.wakeup,
        )

    async def _attempt_handed(self) -> Outcome:
        """Deliveries created claimed by this process: attempted with no claim and no read of the partner."""
        handed = self.handoff.take()
        if not handed:
            return Outcome.IDLE
        attempts = [self.service.deliver(delivery, partner) for delivery, partner in handed]
        await _each([delivery for delivery, _ in handed], attempts, "due again after its lease")
        return Outcome.DONE

    async def _due_pass(self) -> None:
        due = await self.service.due()
        await _each(due, [self.service.claim_and_deliver(delivery) for delivery in due], "it stays due")


async def _each(deliveries: list[Document], attempts: Sequence[Awaitable[object]], then: str) -> None:
    """Runs the attempts side by side; one that crashes does not stop the others."""
    done = await asyncio.gather(*attempts, return_exceptions=True)
    for delivery, result in zip(deliveries, done, strict=True):
        if isinstance(result, BaseException):
            log.error("delivery %s attempt crashed; %s", delivery["_id"], then, exc_info=result)

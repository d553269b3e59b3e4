"""Fires offer deadlines (`MatchingService.expire_due`) on a clock. The deadlines live in the plan documents, so
a pass only asks the database which plans are due: a restart loses none, and the plan's compare-and-set plus its
own state make each fire once even with several replicas polling."""

from goglobal_shared.periodic import LoopOwner, PeriodicTask
from matching.service import MatchingService


class ExpiryScheduler(LoopOwner):
    """Runs `expire_due` on a `PeriodicTask`: every `interval_s`, backing off while the database fails."""

    def __init__(self, service: MatchingService, interval_s: float) -> None:
        self.service = service
        self.loop: PeriodicTask = PeriodicTask("offer expiry scheduler", self._pass, interval_s)

    async def _pass(self) -> None:
        await self.service.expire_due()

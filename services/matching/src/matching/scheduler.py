"""Fires offer deadlines. The deadlines live in the plan documents, so this loop only asks the database which
plans are due: a restart loses none, and the plan's compare-and-set plus its own state make each fire once
even with several replicas polling."""

from goglobal_shared.periodic import LoopOwner, PeriodicTask
from matching.consumers.referral_events import Matcher
from matching.plan import Plan


class ExpiryScheduler(LoopOwner):
    """Runs `fire_due` on a `PeriodicTask`: every `interval_s`, backing off while the database fails."""

    def __init__(self, matcher: Matcher, interval_s: float) -> None:
        self.matcher = matcher
        self.fired = 0
        self.loop: PeriodicTask = PeriodicTask("offer expiry scheduler", self._pass, interval_s)

    async def _pass(self) -> None:
        await self.fire_due()

    async def fire_due(self) -> int:
        fired = 0
        for referral_id in await self.matcher.plans.due(self.matcher.clock()):
            if await self.matcher.plans.change(referral_id, self._expire, self.matcher.clock):
                fired += 1
        self.fired += fired
        return fired

    async def _expire(self, plan: Plan) -> bool:
        if not plan.expire_due(self.matcher.clock()):
            return False  # fired by another replica first
        await self.matcher.refill(plan)
        return True

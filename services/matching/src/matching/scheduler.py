"""Fires offer deadlines. The deadlines live in the plan documents, so this loop only asks the database which
plans are due: a restart loses none, and the plan's compare-and-set plus its own state make each fire once
even with several replicas polling."""

import asyncio
import contextlib
import logging
import time

from matching.consumers.referral_events import Matcher
from matching.plan import Plan

log = logging.getLogger(__name__)


class ExpiryScheduler:
    def __init__(self, matcher: Matcher, interval_s: float) -> None:
        self.matcher = matcher
        self.interval_s = interval_s
        self.running = False
        self.last_pass_monotonic = 0.0
        self.fired = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        self.running = True
        try:
            while not self._stopping.is_set():
                try:
                    await self.fire_due()
                except Exception:
                    log.exception("expiry pass failed; retrying")
                self.last_pass_monotonic = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.interval_s)
        finally:
            self.running = False

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

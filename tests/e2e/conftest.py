"""The end-to-end tier: whole journeys through the running system (tests/world.py) on the real broker and database:
a referral from request to completion, replicas and crashes of matching, and the console and API docs in a headless
Chromium (tests/e2e/browser.py; skipped, saying so, without Debian's chromium and chromium-driver)."""

import pytest

from tests.support import mark_tier


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_tier(items, __file__, pytest.mark.integration)

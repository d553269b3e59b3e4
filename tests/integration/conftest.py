"""The integration tier: the services started as processes (`python -m <service>`, as in production) on the real
Kafka broker and MongoDB-wire server, through the shared system of tests/world.py; most modules build one system
for all their tests (a module-scoped `world` fixture), each in a namespace of its own (topics and databases).
Deadlines scale with GOGLOBAL_TEST_TIME_SCALE (tests/support.py)."""

import pytest

from tests.support import mark_tier


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_tier(items, __file__, pytest.mark.integration)

"""The hostile tier: the running system (tests/world.py) on the real broker and database under hostile input:
Schemathesis over intake's OpenAPI document, fuzzed Kafka records on every topic, webhook targets inside the
platform's network, and one regression test per bug these found (each names its bug).
`GOGLOBAL_HOSTILE_EXAMPLES`, `GOGLOBAL_HOSTILE_BUDGET_S` and `GOGLOBAL_HOSTILE_SEED` make the runs deeper or replay
them."""

import pytest

from tests.support import mark_tier


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_tier(items, __file__, pytest.mark.integration)

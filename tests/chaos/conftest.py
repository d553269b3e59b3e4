"""The chaos tier: faults under load on a Kafka + nx-27017 stack of its own (the scenarios stop and restart it),
started once for the tier and stopped after it. `make test` runs the short form, `make test CHAOS=full` and
`make test-chaos` the full one (tests/chaos/harness.py, ChaosConfig)."""

from collections.abc import Iterator

import pytest

from tests.chaos.harness import chaos_infra
from tests.support import mark_tier


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_tier(items, __file__, pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(1800))


@pytest.fixture(scope="package", autouse=True)
def chaos_stack() -> Iterator[None]:
    chaos_infra("up")
    yield
    chaos_infra("down")  # a stack left running would hold its ports (fixed when GOGLOBAL_CHAOS_*_PORT are set)

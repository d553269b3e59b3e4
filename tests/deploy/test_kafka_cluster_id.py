"""The KRaft cluster id that `deploy/local/infra.py` formats storage with (a CI run once failed on one)."""

import base64
import importlib.util
import sys
from types import ModuleType

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import REPO


def load_infra() -> ModuleType:
    """deploy/local/infra.py is a script, not a package module: loaded from its path."""
    spec = importlib.util.spec_from_file_location("local_infra", REPO / "deploy" / "local" / "infra.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


INFRA = load_infra()


@settings(max_examples=300)
@given(st.integers())
def test_a_cluster_id_is_16_random_bytes_never_read_as_an_option(_: int) -> None:
    cluster_id: str = INFRA.kafka_cluster_id()
    assert not cluster_id.startswith("-"), cluster_id  # `format -t -abc…` fails: "expected one argument"
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16

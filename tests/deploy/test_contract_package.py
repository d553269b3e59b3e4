"""The contract package (`contract/`, `goglobal-contract`) installs on its own, as a partner would install it: into
an empty virtual environment it brings pydantic, the CloudEvents SDK and the code-list libraries, and no web
framework, broker or database client, telemetry or settings library. Also: the partner consumer example imports
nothing of ours but the contract.

Needs uv (`make install` puts it in .tools/bin; `uv run` sets $UV) and its wheel cache or the package index."""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

# Distributions a consumer of the contract must not receive (prefixes: every opentelemetry-* package).
FORBIDDEN: tuple[str, ...] = ("fastapi", "starlette", "uvicorn", "aiokafka", "pymongo", "opentelemetry-")
FORBIDDEN += ("prometheus-client", "pydantic-settings", "goglobal-shared", "goglobal-intake", "goglobal-matching")
FORBIDDEN += ("goglobal-notifications",)
OURS = {"goglobal_shared", "intake", "matching", "notifications", "tests", "tools", "bench"}


def find_uv() -> str | None:
    candidates = [os.environ.get("UV"), str(REPO / ".tools/bin/uv"), shutil.which("uv")]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def contract_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh virtual environment holding only ./contract and what it depends on."""
    uv = find_uv()
    if uv is None:
        pytest.skip("uv not found ($UV, .tools/bin/uv or PATH): run `make install`")
    venv = tmp_path_factory.mktemp("contract-only") / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    made = run(uv, "venv", "--quiet", "--python", sys.executable, str(venv), env=env)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    install = (uv, "pip", "install", "--quiet", "--python", str(python), "./contract")
    installed = run(*install, env=env)
    if installed.returncode != 0:  # no index reachable: the wheel cache may still hold everything
        offline = run(*install, "--offline", env=env)
        if offline.returncode != 0:
            pytest.skip(f"no network and no cached wheels to install ./contract: {installed.stderr.strip()[-300:]}")
    return python


def test_installing_the_contract_alone_pulls_no_server_side_dependency(contract_python: Path) -> None:
    listed = run(
        str(contract_python),
        "-c",
        "import importlib.metadata as m, json; print(json.dumps([d.metadata['Name'] for d in m.distributions()]))",
    )
    assert listed.returncode == 0, listed.stderr
    names = [name.lower().replace("_", "-") for name in json.loads(listed.stdout)]
    assert "goglobal-contract" in names
    assert {"pydantic", "cloudevents"} <= set(names)
    assert [n for n in names if n.startswith(FORBIDDEN)] == []


def test_the_contract_imports_in_its_own_environment(contract_python: Path) -> None:
    code = (
        "import goglobal_contract.envelope, goglobal_contract.events, goglobal_contract.registry, "
        "goglobal_contract.partner_events, goglobal_contract.state_machine, sys; "
        "assert not {'fastapi', 'aiokafka', 'pymongo', 'opentelemetry'} & set(sys.modules); "
        "print(len(goglobal_contract.registry.PAYLOADS))"
    )
    imported = run(str(contract_python), "-c", code)
    assert imported.returncode == 0, imported.stderr
    assert int(imported.stdout) > 0


def test_the_partner_consumer_example_uses_only_the_contract_of_ours() -> None:
    tree = ast.parse((REPO / "examples/partner_consumer.py").read_text("utf-8"))
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    roots = {module.split(".")[0] for module in modules}
    assert "goglobal_contract" in roots
    assert roots & OURS == set()
    assert roots - {"goglobal_contract", "aiokafka"} <= set(sys.stdlib_module_names)

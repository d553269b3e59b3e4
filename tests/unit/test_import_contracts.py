"""The layering contracts in pyproject.toml (`make lint` runs `lint-imports`) hold on the code, and fail when a
domain module, a service or the contract reaches where it must not: proved on a copy of the code with one wrong
import."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
SOURCES = {
    "intake": REPO / "services/intake/src/intake",
    "goglobal_contract": REPO / "contract/src/goglobal_contract",
    "notifications": REPO / "services/notifications/src/notifications",
}


def lint_imports(python_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(python_path)} if python_path else dict(os.environ)
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_code_keeps_every_contract() -> None:
    answer = lint_imports()
    assert answer.returncode == 0, answer.stdout + answer.stderr


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("intake/domain/leak.py", "import pymongo\n", "Domain cores do no I/O"),
        ("intake/domain/leak.py", "import intake.adapters.partner_repository\n", "Domain cores do no I/O"),
        ("intake/leak.py", "import matching.plan\n", "No service imports another"),
        ("intake/service_layer/leak.py", "import intake.adapters.partner_repository\n", "use cases reach the world"),
        ("intake/service_layer/leak.py", "import fastapi\n", "use cases reach the world"),
        ("notifications/service.py", "import pymongo\n", "use cases reach the world"),
        ("intake/api/leak.py", "from intake.bootstrap import bootstrap\n", "Only the entry points"),
        ("goglobal_contract/leak.py", "import goglobal_shared.kafka\n", "The contract imports nothing of ours"),
        ("goglobal_contract/leak.py", "import intake.domain.inputs.partner\n", "The contract imports nothing of ours"),
        ("goglobal_contract/leak.py", "import fastapi\n", "The contract imports nothing of ours"),
        ("goglobal_contract/leak.py", "from opentelemetry import trace\n", "The contract imports nothing of ours"),
    ],
)
def test_a_wrong_import_breaks_its_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    # A copy of the package placed first on the path shadows the installed one; the others stay as they are.
    package = module.split("/")[0]
    shutil.copytree(SOURCES[package], tmp_path / package)
    (tmp_path / module).write_text(line)
    answer = lint_imports(tmp_path)
    assert answer.returncode != 0, answer.stdout
    assert broken in answer.stdout.replace("\n", " ")

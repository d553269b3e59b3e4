"""Static checks of docker-compose.yml and deploy/docker/Dockerfile (no Docker engine needed)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
APP_PORTS = {"intake": 8000, "matching": 8001, "notifications": 8002}
EXPECTED_PORTS = {"kafka": {29092}, "mongodb": {27017}, **{name: {port} for name, port in APP_PORTS.items()}}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose: Any = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    result: dict[str, Any] = compose["services"]
    return result


def published_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports", []):
        # short syntax "[ip:]host:container" or long syntax {target, published}
        ports.add(int(entry["published"]) if isinstance(entry, dict) else int(str(entry).split(":")[-2]))
    return ports


def test_every_service_is_present_with_a_healthcheck(services: dict[str, Any]) -> None:
    assert set(EXPECTED_PORTS) <= set(services)
    for name in EXPECTED_PORTS:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_published_ports(services: dict[str, Any]) -> None:
    assert {name: published_ports(services[name]) for name in EXPECTED_PORTS} == EXPECTED_PORTS


@pytest.mark.parametrize("name", sorted(APP_PORTS))
def test_app_service_builds_from_shared_dockerfile(services: dict[str, Any], name: str) -> None:
    service = services[name]
    build = service["build"]
    assert (REPO / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert build["args"]["SERVICE"] == name
    assert {dep: cfg["condition"] for dep, cfg in service["depends_on"].items()} == {
        "kafka": "service_healthy",
        "mongodb": "service_healthy",
    }
    assert str(service["environment"]["GOGLOBAL_HTTP_PORT"]) == str(APP_PORTS[name])
    assert "/readyz" in " ".join(service["healthcheck"]["test"])


def test_infrastructure_images_are_pinned(services: dict[str, Any]) -> None:
    assert re.fullmatch(r"apache/kafka:4\.\d+(\.\d+)?", services["kafka"]["image"])
    assert re.fullmatch(r"mongo:7\.\d+(\.\d+)?", services["mongodb"]["image"])


def test_dockerfile_runs_as_non_root_with_healthcheck() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users, "Dockerfile has no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK\s", text, flags=re.MULTILINE)
    assert "uv sync --frozen" in text
    assert re.search(r"^ARG SERVICE\b", text, flags=re.MULTILINE)


def test_dockerfile_copies_every_workspace_member() -> None:
    # `uv sync --frozen --package ...` needs every member's manifest, then its sources, or the build fails.
    text = DOCKERFILE.read_text(encoding="utf-8")
    workspace = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["uv"]["workspace"]
    members: list[str] = workspace["members"]
    for member in members:
        for path in sorted(REPO.glob(member)):
            relative = path.relative_to(REPO).as_posix()
            assert f"COPY {relative}/pyproject.toml {relative}/pyproject.toml" in text, relative
            assert re.search(rf"^COPY {re.escape(relative.split('/')[0])}/ ", text, flags=re.MULTILINE), relative

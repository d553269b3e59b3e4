"""Static checks of the Kubernetes manifests in deploy/k8s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SERVICES = {"intake", "matching", "notifications"}


def load_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in load_docs() if doc.get("kind") == kind]


def test_kustomization_lists_every_manifest() -> None:
    kustomization: Any = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    manifests = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(manifests)


def test_every_service_has_a_deployment_and_a_service() -> None:
    assert {doc["metadata"]["name"] for doc in of_kind("Deployment")} == SERVICES
    assert {doc["metadata"]["name"] for doc in of_kind("Service")} == SERVICES
    assert not of_kind("Secret"), "secrets must not be committed"


def test_deployments_are_probed_and_non_root() -> None:
    for deployment in of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["containers"], name
        for container in pod["containers"]:
            assert container.get("image"), name
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
            assert context.get("runAsNonRoot") is True, name
            assert context.get("readOnlyRootFilesystem") is True, name
            mongo = [env for env in container.get("env", []) if env["name"] == "GOGLOBAL_MONGODB_URI"]
            assert mongo and mongo[0]["valueFrom"]["secretKeyRef"] == {
                "name": "goglobal-secrets",
                "key": "mongodb-uri",
            }, name

"""Static checks of the Kubernetes manifests in deploy/k8s (the base and every overlay), against the
Kubernetes API schemas and against the code: ports, probe paths, settings names, shutdown timing.

Kustomize is not needed: the kustomizations are rendered here by hand (resources, strategic-merge patches,
images, namespace), and compared with `kubectl kustomize` when kubectl is installed.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pydantic import AliasChoices, SecretStr
from pydantic_settings import BaseSettings

from goglobal_shared.kafka import ensure_topics
from goglobal_shared.settings import ENV_PREFIX, ServiceSettings
from intake.app import create_app as create_intake
from intake.settings import IntakeSettings
from matching.app import create_app as create_matching
from matching.settings import MatchingSettings
from notifications.app import create_app as create_notifications
from notifications.settings import NotificationsSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
TARGETS = {"base": K8S, **{path.parent.name: path.parent for path in sorted(K8S.glob("overlays/*/kustomization.yaml"))}}

# A Kubernetes version whose schemas kubernetes-validate ships offline (it has 1.25 to 1.37): the oldest
# minor still commonly run in production, so the manifests do not depend on newer API fields.
KUBERNETES_VERSION = "1.30"

SETTINGS: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "matching": MatchingSettings,
    "notifications": NotificationsSettings,
}
# Each service's FastAPI app, built (not started: the lifespan that connects to Kafka and MongoDB never runs).
APPS: dict[str, Callable[[], FastAPI]] = {
    "intake": lambda: create_intake(IntakeSettings()),
    "matching": lambda: create_matching(MatchingSettings()),
    "notifications": lambda: create_notifications(NotificationsSettings()),
}
# Topics each service's main consumer group (`goglobal-<service>`) subscribes to (see each bootstrap.py).
CONSUMED_TOPICS = {"intake": 2, "matching": 1, "notifications": 4}
# Partitions of every topic the services create (goglobal_shared.kafka.ensure_topics).
PARTITIONS: int = inspect.signature(ensure_topics).parameters["partitions"].default

SECRET_NAME = "goglobal-secrets"
# Sample values standing in for the Secret's keys when the settings are built from a manifest.
SECRET_SAMPLES = {
    "mongodb-uri": "mongodb://goglobal:sample@mongodb:27017/?authSource=admin",
    "webhook-master-key": "sample-master-key-for-the-manifest-tests-0123456789",
    "smtp-password": "sample-smtp-password",
}
OPTIONAL_SECRET_KEYS = {"smtp-password"}
NON_ROOT_UID = 10001


# --- loading and rendering ---------------------------------------------------------------------------


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def load_kustomization(directory: Path) -> dict[str, Any]:
    [kustomization] = load_documents(directory / "kustomization.yaml")
    assert kustomization.get("kind", "Kustomization") == "Kustomization", directory
    return kustomization


def key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def strategic_merge(target: Any, patch: Any) -> Any:
    """Kustomize's strategic merge for what these patches use: maps merge, lists of named items merge by
    `name` (containers, env, ports), other lists are replaced."""
    if isinstance(target, dict) and isinstance(patch, dict):
        merged = dict(target)
        for name, value in patch.items():
            merged[name] = strategic_merge(target[name], value) if name in target else copy.deepcopy(value)
        return merged
    if isinstance(target, list) and isinstance(patch, list) and all(_named(i) for i in [*target, *patch]):
        by_name = {item["name"]: item for item in target}
        result = [strategic_merge(item, _by_name(patch, item["name"])) for item in target]
        return result + [copy.deepcopy(item) for item in patch if item["name"] not in by_name]
    return copy.deepcopy(patch)


def _named(item: Any) -> bool:
    return isinstance(item, dict) and "name" in item


def _by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next((item for item in items if item["name"] == name), {})


def set_image(image: str, rules: list[dict[str, Any]]) -> str:
    """Kustomize's `images:` (newName, newTag, digest) for `name[:tag][@digest]` references."""
    reference = image.split("@")[0]
    name, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "")
    for rule in rules:
        if rule["name"] == name:
            new_name = rule.get("newName", name)
            if "digest" in rule:
                return f"{new_name}@{rule['digest']}"
            tag = rule.get("newTag", tag)
            return f"{new_name}:{tag}" if tag else new_name
    return image


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


@cache
def _render(directory: Path) -> tuple[dict[str, Any], ...]:
    kustomization = load_kustomization(directory)
    unsupported = set(kustomization) - {"apiVersion", "kind", "resources", "patches", "images", "namespace"}
    assert not unsupported, f"{directory}: teach this test's renderer {sorted(unsupported)}"
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        docs.extend(copy.deepcopy(list(_render(path.resolve()))) if path.is_dir() else load_documents(path))
    for entry in kustomization.get("patches", []):
        assert set(entry) == {"path"}, f"{directory}: only strategic-merge patch files are rendered here"
        for patch in load_documents(directory / entry["path"]):
            index = next((i for i, doc in enumerate(docs) if key(doc) == key(patch)), None)
            assert index is not None, f"{entry['path']} patches {key(patch)}, which the bases do not define"
            assert docs[index]["apiVersion"] == patch["apiVersion"], entry["path"]
            docs[index] = strategic_merge(docs[index], patch)
    for doc in docs:
        if doc["kind"] == "Deployment":
            for container in pod_spec(doc)["containers"]:
                container["image"] = set_image(container["image"], kustomization.get("images", []))
        if "namespace" in kustomization:
            doc["metadata"]["namespace"] = kustomization["namespace"]
    return tuple(docs)


def render(target: str) -> list[dict[str, Any]]:
    return copy.deepcopy(list(_render(TARGETS[target].resolve())))


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [doc for doc in docs if key(doc) == (kind, name)]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def deployments(target: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(service, Deployment, its container) for every service."""
    docs = render(target)
    assert {d["metadata"]["name"] for d in of_kind(docs, "Deployment")} == set(SETTINGS)
    for name in SETTINGS:
        deployment = find(docs, "Deployment", name)
        [container] = pod_spec(deployment)["containers"]
        yield name, deployment, container


# --- what the code says ------------------------------------------------------------------------------


def setting_env_names(cls: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads: GOGLOBAL_<FIELD>, or the field's validation alias."""
    names = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add(f"{ENV_PREFIX}{field_name}".upper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
    return names


def secret_fields(cls: type[BaseSettings]) -> set[str]:
    return {
        f"{ENV_PREFIX}{name}".upper()
        for name, field in cls.model_fields.items()
        if SecretStr in (field.annotation, *getattr(field.annotation, "__args__", ()))
    }


def container_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str | None]:
    """The container's environment as the kubelet builds it (envFrom first, env wins); Secret values are
    samples, optional Secret keys are left out."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        config_map = find(docs, "ConfigMap", source["configMapRef"]["name"])
        env.update({source.get("prefix", "") + k: str(v) for k, v in config_map.get("data", {}).items()})
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            if not ref.get("optional"):
                env[item["name"]] = SECRET_SAMPLES[ref["key"]]
        else:
            env[item["name"]] = item.get("value")
    return env


def settings_from(
    monkeypatch: pytest.MonkeyPatch, cls: type[ServiceSettings], env: dict[str, str | None]
) -> ServiceSettings:
    """The settings the service would start with, given only the manifest's environment."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    return cls()


@cache
def get_routes(service: str) -> frozenset[str]:
    """Paths answered to GET by the service's FastAPI app (built, not started: no Kafka or database)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("GOGLOBAL_WEBHOOK_MASTER_KEY", SECRET_SAMPLES["webhook-master-key"])
        app = APPS[service]()
    # app.routes holds the included routers; iter_route_contexts flattens them into the effective routes.
    return frozenset(r.path for r in iter_route_contexts(app.routes) if r.path and "GET" in (r.methods or ()))


def port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(number)


def quantity(value: str | int) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, value
    return float(match[1]) * units.get(match[2], 1)


def assert_valid(doc: dict[str, Any], where: str) -> None:
    """Strict: unknown fields are errors too (a typo would otherwise be dropped silently by the API server)."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        problem = f"{where}: {key(doc)} at {'.'.join(str(p) for p in exc.path)}: {exc.message[:300]}"
    else:
        return
    pytest.fail(problem, pytrace=False)


# --- the files ---------------------------------------------------------------------------------------


def test_every_manifest_belongs_to_a_kustomization() -> None:
    referenced: set[Path] = set()
    for kustomization_file in K8S.rglob("kustomization.yaml"):
        directory = kustomization_file.parent
        referenced.add(kustomization_file)
        kustomization = load_kustomization(directory)
        for entry in kustomization.get("resources", []):
            path = (directory / entry).resolve()
            assert path.exists(), f"{kustomization_file}: {entry} does not exist"
            referenced.add(path / "kustomization.yaml" if path.is_dir() else path)
        for entry in kustomization.get("patches", []):
            path = (directory / entry["path"]).resolve()
            assert path.is_file(), f"{kustomization_file}: patch {entry['path']} does not exist"
            referenced.add(path)
    files = {path.resolve() for path in [*K8S.rglob("*.yaml"), *K8S.rglob("*.yml")]}
    assert files - referenced == set(), "files no kustomization uses"


def test_the_top_kustomization_is_the_base_and_overlays_build_on_it() -> None:
    assert load_kustomization(K8S)["resources"] == ["base"]
    assert set(TARGETS) >= {"base", "production"}
    base = {key(doc) for doc in render("base")}
    for target in set(TARGETS) - {"base"}:
        resources = load_kustomization(TARGETS[target])["resources"]
        assert [(TARGETS[target] / r).resolve() for r in resources] == [(K8S / "base").resolve()], target
        assert {key(doc) for doc in render(target)} == base, f"{target} adds or loses resources"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_documents_are_valid_kubernetes_objects(target: str) -> None:
    for doc in render(target):
        assert_valid(doc, target)


def test_resource_files_are_valid_on_their_own() -> None:
    """The base files themselves, not only the render (patch files are partial: checked once merged)."""
    patches = {
        (directory.parent / entry["path"]).resolve()
        for directory in K8S.rglob("kustomization.yaml")
        for entry in load_kustomization(directory.parent).get("patches", [])
    }
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or path.resolve() in patches:
            continue
        for doc in load_documents(path):
            assert_valid(doc, str(path.relative_to(K8S)))


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_hand_render_matches_kubectl_kustomize(target: str) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(TARGETS[target])], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    rendered = {key(doc): doc for doc in yaml.safe_load_all(result.stdout) if doc}
    assert rendered == {key(doc): doc for doc in render(target)}


# --- no secrets, and where they come from ------------------------------------------------------------


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_no_secret_is_committed_and_references_are_known(target: str) -> None:
    docs = render(target)
    assert not of_kind(docs, "Secret"), "secrets must not be committed"
    for name, _, container in deployments(target):
        cls = SETTINGS[name]
        refs = {
            item["name"]: item["valueFrom"]["secretKeyRef"]
            for item in container.get("env", [])
            if "secretKeyRef" in item.get("valueFrom", {})
        }
        for ref in refs.values():
            assert ref["name"] == SECRET_NAME, name
            assert ref["key"] in SECRET_SAMPLES, f"{name}: unknown Secret key {ref['key']}"
            assert bool(ref.get("optional")) == (ref["key"] in OPTIONAL_SECRET_KEYS), f"{name}: {ref['key']}"
        assert refs["GOGLOBAL_MONGODB_URI"]["key"] == "mongodb-uri", name
        # Every secret setting the service reads comes from the Secret, never from a literal value.
        literal = {item["name"] for item in container.get("env", []) if "value" in item}
        assert not (secret_fields(cls) & literal), f"{name}: a secret setting has a literal value"
        required = {n for n, f in cls.model_fields.items() if f.is_required() and n != "service_name"}
        for field_name in required:
            assert f"{ENV_PREFIX}{field_name}".upper() in refs, f"{name} needs {field_name} from {SECRET_NAME}"
        if "webhook_master_key" in cls.model_fields:
            assert refs["GOGLOBAL_WEBHOOK_MASTER_KEY"]["key"] == "webhook-master-key", name


# --- settings, ports, probes -------------------------------------------------------------------------


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_goglobal_variable_is_a_real_setting(target: str) -> None:
    docs = render(target)
    consumers: dict[str, set[str]] = {}
    for name, _, container in deployments(target):
        known = setting_env_names(SETTINGS[name])
        for item in container.get("env", []):
            if item["name"].startswith(ENV_PREFIX):
                assert item["name"] in known, f"{name}: {item['name']} is not a setting of {name}"
        for source in container.get("envFrom", []):
            consumers.setdefault(source["configMapRef"]["name"], set()).add(name)
    for config_map in of_kind(docs, "ConfigMap"):
        users = consumers.get(config_map["metadata"]["name"], set())
        assert users, f"ConfigMap {config_map['metadata']['name']} is not used"
        for variable in config_map.get("data", {}):
            for user in users:  # unknown names would be silently ignored (extra="ignore")
                assert variable in setting_env_names(SETTINGS[user]), f"{variable} is not a setting of {user}"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_services_accept_the_manifest_configuration(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    docs = render(target)
    for name, _, container in deployments(target):
        settings = settings_from(monkeypatch, SETTINGS[name], container_env(docs, container))
        assert settings.service_name == name
        assert settings.http_host == "0.0.0.0", f"{name}: probes cannot reach 127.0.0.1"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_ports_and_probes_match_the_code(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    docs = render(target)
    for name, deployment, container in deployments(target):
        cls = SETTINGS[name]
        settings = settings_from(monkeypatch, cls, container_env(docs, container))
        default_port = cls.model_fields["http_port"].default
        assert settings.http_port == default_port, f"{name}: GOGLOBAL_HTTP_PORT differs from the default"
        assert port_number(container, "http") == settings.http_port, name
        routes = get_routes(name)
        probes = {kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "readiness", "liveness")}
        assert probes["readiness"]["path"] == "/readyz", name
        assert probes["liveness"]["path"] == "/healthz", name
        assert probes["startup"]["path"] in {"/healthz", "/readyz"}, name
        for kind, probe in probes.items():
            assert probe["path"] in routes, f"{name}: {kind} probe path {probe['path']} is not a route"
            assert port_number(container, probe["port"]) == settings.http_port, f"{name}: {kind} probe port"
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert int(annotations["prometheus.io/port"]) == settings.http_port, name
        assert annotations["prometheus.io/path"] == "/metrics" and "/metrics" in routes, name


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_grace_period_outlasts_the_graceful_shutdown(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """uvicorn drains HTTP for up to GOGLOBAL_SHUTDOWN_TIMEOUT_S, then the lifespan gives the loops as long
    again before the clients close; a preStop sleep runs before SIGTERM."""
    docs = render(target)
    for name, deployment, container in deployments(target):
        settings = settings_from(monkeypatch, SETTINGS[name], container_env(docs, container))
        command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pre_stop = int(command[1]) if command[:1] == ["sleep"] else 0
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        assert grace >= pre_stop + 2 * settings.shutdown_timeout_s + 5, f"{name}: {grace}s is too short"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_services_route_to_the_pods(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    docs = render(target)
    for name, deployment, container in deployments(target):
        service = find(docs, "Service", name)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        [port] = service["spec"]["ports"]
        assert (
            port_number(container, port["targetPort"])
            == port["port"]
            == SETTINGS[name].model_fields["http_port"].default
        ), name
    # The console's view of the other services: in-cluster URLs of these Services and ports.
    intake = find(docs, "Deployment", "intake")
    env = container_env(docs, pod_spec(intake)["containers"][0])
    urls = settings_from(monkeypatch, IntakeSettings, env)
    assert isinstance(urls, IntakeSettings)
    assert set(urls.service_urls) == set(SETTINGS)
    for name, url in urls.service_urls.items():
        parts = urlsplit(url)
        service = find(docs, "Service", str(parts.hostname))
        assert parts.scheme == "http" and parts.port == service["spec"]["ports"][0]["port"], url
        assert service["spec"]["selector"]["app.kubernetes.io/name"] == name, url


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kafka_and_mongodb_are_external(target: str) -> None:
    docs = render(target)
    assert not [d for d in of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet") if "kafka" in str(d)]
    for name in ("kafka", "mongodb"):
        assert find(docs, "Service", name)["spec"]["type"] == "ExternalName"
    config = find(docs, "ConfigMap", "goglobal-config")["data"]
    for server in config["GOGLOBAL_KAFKA_BOOTSTRAP_SERVERS"].split(","):
        host = server.rsplit(":", 1)[0]
        assert find(docs, "Service", host)["spec"]["type"] == "ExternalName", server


# --- security, resources, scaling --------------------------------------------------------------------


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_pods_run_locked_down(target: str) -> None:
    for name, deployment, container in deployments(target):
        pod = pod_spec(deployment)
        context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] == NON_ROOT_UID, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"] and not context["capabilities"].get("add"), name
        assert pod["automountServiceAccountToken"] is False, name
        assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}, name
        assert re.fullmatch(r"goglobal/" + name + r":\d+\.\d+\.\d+", container["image"]), container["image"]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_resources_are_requested_and_limited(target: str) -> None:
    for name, _, container in deployments(target):
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            request, limit = resources["requests"][resource], resources["limits"][resource]
            assert 0 < quantity(request) <= quantity(limit), f"{name} {resource}: {request} > {limit}"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_autoscalers_and_disruption_budgets(target: str) -> None:
    docs = render(target)
    for name, deployment, _ in deployments(target):
        assert "replicas" not in deployment["spec"], f"{name}: the HorizontalPodAutoscaler owns the count"
        hpa = find(docs, "HorizontalPodAutoscaler", name)
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"] == ["cpu"]
        low, high = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
        assert 2 <= low <= high, f"{name}: minAvailable 1 needs at least 2 replicas to allow a drain"
        # A replica without a partition of its consumer group answers /readyz with 503. Every replica the
        # autoscaler may run, plus a rollout's surge pod when no old pod may go first, must find one.
        rolling = deployment["spec"]["strategy"]["rollingUpdate"]
        surge = rolling["maxSurge"] if rolling["maxUnavailable"] == 0 else 0
        assert high + surge <= PARTITIONS * CONSUMED_TOPICS[name], f"{name}: replicas without partitions"
        if name != "intake":  # consumers: parallelism per topic is its partition count
            assert high <= PARTITIONS, f"{name}: replicas beyond {PARTITIONS} partitions sit idle"
        pdb = find(docs, "PodDisruptionBudget", name)
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"]["minAvailable"] == 1, name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), name


def test_idle_consumer_replicas_are_explained() -> None:
    for name in ("matching", "notifications"):
        text = (K8S / "base" / f"{name}.yaml").read_text(encoding="utf-8")
        hpa_part = text[text.index("kind: HorizontalPodAutoscaler") - 600 :]
        assert "idle" in hpa_part and "partition" in hpa_part, name


def test_service_urls_are_valid_json() -> None:
    intake = find(render("base"), "Deployment", "intake")
    [value] = [e["value"] for e in pod_spec(intake)["containers"][0]["env"] if e["name"] == "GOGLOBAL_SERVICE_URLS"]
    assert set(json.loads(value)) == set(SETTINGS)

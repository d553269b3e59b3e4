"""deploy/observability without a running Prometheus or Grafana: the alert rules pass `promtool check rules` and
their unit tests (`promtool test rules`), the Prometheus configs pass `promtool check config`, every dashboard
expression parses, every panel has a datasource and targets, and docker-compose wires both with the provisioning.

promtool comes from Debian's prometheus package, unpacked by `make promtool` (a prerequisite of `make test`) into
.tools/bin; the tests that need it are skipped, saying so, only where it is absent. That the metric names exist in
the services' /metrics is checked against running services in tests/integration/test_observability.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability import (
    ALERT_TESTS,
    ALERTS,
    DASHBOARD,
    OBSERVABILITY,
    PROMETHEUS_CONFIGS,
    REPO,
    dashboard,
    dashboard_exprs,
    grafana_to_promql,
    metric_names,
    panels,
    rule_exprs,
    rules,
)

OPERATIONS = REPO / "docs" / "operations.md"
APP_PORTS = {"intake": 8000, "matching": 8001, "notifications": 8002}
REQUIRED_ALERTS = {
    "GoGlobalServiceDown",
    "GoGlobalNotReady",
    "GoGlobalConsumerLagGrowing",
    "GoGlobalOutboxEventTooOld",
    "GoGlobalDeadLetters",
    "GoGlobalWebhookEndpointDisabled",
}


def promtool() -> str:
    found = REPO / ".tools" / "bin" / "promtool"
    if found.is_file():
        return str(found)
    on_path = shutil.which("promtool")
    if on_path is None:
        pytest.skip("promtool is not installed: `make promtool` unpacks it from Debian's prometheus package")
    return on_path


def run_promtool(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def test_promtool_checks_the_rules() -> None:
    result = run_promtool("check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", ALERT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_fails_a_rule_unit_test_that_expects_the_wrong_thing(tmp_path: Path) -> None:
    """The unit tests can fail: with a threshold of the rules changed, the same tests no longer pass."""
    threshold = '(goglobal_outbox_oldest_pending_seconds{job="goglobal"}) > 120\n'
    text = ALERTS.read_text(encoding="utf-8")
    assert text.count(threshold) == 1
    (tmp_path / "alerts.yml").write_text(text.replace(threshold, threshold.replace("120", "1200")))
    shutil.copy(ALERT_TESTS, tmp_path / "alerts.test.yml")
    result = run_promtool("test", "rules", tmp_path / "alerts.test.yml")
    assert result.returncode != 0
    assert "GoGlobalOutboxEventTooOld" in result.stdout + result.stderr


@pytest.mark.parametrize("config", PROMETHEUS_CONFIGS, ids=lambda path: path.name)
def test_promtool_checks_the_prometheus_config(config: Path) -> None:
    result = run_promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_expression_parses(tmp_path: Path) -> None:
    """promtool parses each expression (Grafana's variables replaced) as a recording rule."""
    exprs = dashboard_exprs()
    records = [{"record": f"dashboard:expr_{n}", "expr": expr} for n, expr in enumerate(exprs.values())]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}, width=1000))
    result = run_promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(records)} rules found" in result.stdout


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not() -> None:
    suite: dict[str, Any] = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))
    assert suite["rule_files"] == [ALERTS.name]
    fires: set[str] = set()
    silent: set[str] = set()
    for test in suite["tests"]:
        for case in test["alert_rule_test"]:
            (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    alerts = {rule["alert"] for rule in rules()}
    assert alerts - fires == set(), "alerts never seen firing in alerts.test.yml"
    assert alerts - silent == set(), "alerts never seen staying silent in alerts.test.yml"


def test_the_alerts_the_issue_asks_for_exist() -> None:
    assert {rule["alert"] for rule in rules()} >= REQUIRED_ALERTS


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but hyphens dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_alert_tells_the_operator_what_it_means_and_where_to_look() -> None:
    anchors = _anchors(OPERATIONS.read_text(encoding="utf-8"))
    assert {"health-and-readiness", "alerts", "dead-letters"} <= anchors
    for rule in rules():
        name, annotations = rule["alert"], rule["annotations"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert len(annotations["summary"]) > 20, name
        assert "First:" in annotations["description"], f"{name}: the description says what to look at first"
        runbook = annotations["runbook_url"]
        assert runbook.startswith("docs/operations.md#"), name
        assert runbook.split("#", 1)[1] in anchors, f"{name}: {runbook} names no section of docs/operations.md"
        for link in re.findall(r"docs/operations\.md#([\w-]+)", annotations["description"]):
            assert link in anchors, f"{name}: docs/operations.md#{link} names no section"


def test_rules_and_dashboard_read_the_scrape_job_of_the_prometheus_configs() -> None:
    for config_path in PROMETHEUS_CONFIGS:
        config: dict[str, Any] = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        assert config["rule_files"] == [ALERTS.name]
        (job,) = config["scrape_configs"]
        assert job["job_name"] == "goglobal"
        ports = {
            entry["labels"]["service"]: int(entry["targets"][0].rsplit(":", 1)[1]) for entry in job["static_configs"]
        }
        assert ports == APP_PORTS, config_path.name
    for where, expr in {**rule_exprs(), **dashboard_exprs()}.items():
        assert 'job="goglobal"' in expr, f"{where} does not select the goglobal job"


def test_dashboard_panels_have_a_datasource_and_targets() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["service"]["includeAll"] and variables["service"]["multi"]
    all_panels = panels(board)
    ids = [panel["id"] for panel in all_panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    graphs = [panel for panel in all_panels if panel["type"] != "row"]
    assert len(graphs) >= 10
    for panel in graphs:
        title = panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel["targets"], f"{title} has no targets"
        assert panel.get("description"), f"{title} has no description"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), title
        for target in panel["targets"]:
            assert target["expr"].strip(), title
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], title
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, title


def test_dashboard_covers_every_topic_per_service() -> None:
    exprs = dashboard_exprs()
    used = set().union(*map(metric_names, exprs.values()))
    assert {
        "up",  # availability
        "goglobal_http_requests_total",  # readiness probes, API status codes
        "goglobal_referrals",  # the funnel
        "goglobal_events_produced_total",  # funnel flow, endpoints disabled
        "goglobal_http_request_duration_seconds_bucket",  # latency
        "goglobal_event_handling_seconds_bucket",
        "goglobal_consumer_lag",
        "goglobal_outbox_backlog",
        "goglobal_outbox_oldest_pending_seconds",
        "goglobal_dead_letters_total",
        "goglobal_deliveries_total",  # webhook success
    } <= used
    assert any("endpoint_disabled" in expr for expr in exprs.values())
    per_service = [e for where, e in exprs.items() if where.startswith("panel") and 'service=~".*"' in e]
    assert len(per_service) >= len(exprs) // 2, "most panels follow the service variable"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('up{job="goglobal"} == 0', {"up"}),
        (
            'histogram_quantile(0.95, sum by (service, le) (rate(a_seconds_bucket{route!~"/x|{y}"}[5m])))',
            {"a_seconds_bucket"},
        ),
        ("sum(x_total) by (topic) / on (topic) group_left (kind) y_info offset 5m > bool 1e3", {"x_total", "y_info"}),
        ('max by (service) (a) > 0 and sum without (p) (delta(b[15m:1m])) > 0 unless c{d="e(f)"}', {"a", "b", "c"}),
        ("60 * sum(rate(ns:rec:rate5m[$__rate_interval]))", {"ns:rec:rate5m"}),
        ('label_values(up{job="goglobal"}, service)', {"up"}),
    ],
)
def test_metric_names_extracts_selectors_only(expr: str, names: set[str]) -> None:
    assert metric_names(grafana_to_promql(expr)) == names


def test_grafana_variables_become_promql() -> None:
    assert grafana_to_promql('rate(a{s=~"$service"}[$__rate_interval]) + b[$__range]') == 'rate(a{s=~".*"}[5m]) + b[5m]'


def test_compose_runs_prometheus_and_grafana_with_the_provisioning() -> None:
    compose: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert re.fullmatch(r"prom/prometheus:v3\.\d+\.\d+", prometheus["image"])
    assert re.fullmatch(r"grafana/grafana:12\.\d+\.\d+", grafana["image"])

    def mounts(service: dict[str, Any]) -> dict[str, Path]:
        """Bind mounts of repository files, by target (named volumes, for the data, are left out)."""
        found = {}
        for volume in service["volumes"]:
            source, target = str(volume).split(":")[:2]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{source} does not exist"
                found[target] = (REPO / source).resolve()
        return found

    prometheus_mounts = mounts(prometheus)
    assert prometheus_mounts["/etc/prometheus/prometheus.yml"] == (OBSERVABILITY / "prometheus.yml").resolve()
    assert prometheus_mounts["/etc/prometheus/alerts.yml"] == ALERTS.resolve()  # rule_files is relative
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]

    grafana_mounts = mounts(grafana)
    provisioning = grafana_mounts["/etc/grafana/provisioning"]
    assert provisioning == (OBSERVABILITY / "grafana" / "provisioning").resolve()
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "goglobal.yml").read_text())["providers"]
    assert grafana_mounts[provider["options"]["path"]] == DASHBOARD.parent.resolve()
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"]
    assert datasource["url"] == "http://prometheus:9090"
    assert {"prometheus"} <= set(grafana.get("depends_on", {}))

    # prometheus.yml scrapes the compose services on the ports they listen on.
    config: dict[str, Any] = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {e["labels"]["service"]: e["targets"] for e in config["scrape_configs"][0]["static_configs"]}
    for name, port in APP_PORTS.items():
        assert str(services[name]["environment"]["GOGLOBAL_HTTP_PORT"]) == str(port)
        assert targets[name] == [f"{name}:{port}"]


def test_operations_guide_links_the_dashboard_and_the_rules() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    for path in (ALERTS, ALERT_TESTS, DASHBOARD, PROMETHEUS_CONFIGS[1]):
        relative = path.relative_to(REPO).as_posix()
        assert f"../{relative}" in text or relative.removeprefix("deploy/observability/") in text, relative
    for link in re.findall(r"\]\((\.\./deploy/observability[^)#]*)\)", text):
        assert (OPERATIONS.parent / link).exists(), link

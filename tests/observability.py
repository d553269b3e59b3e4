"""The PromQL of deploy/observability (the Grafana dashboard and the alert rules) and the metric names it reads.

No PromQL parser is at hand in Python, so `metric_names` strips what cannot be a metric name (strings, label
matchers, ranges, grouping label lists, function calls, keywords, numbers) and keeps the identifiers left;
tests/deploy/test_alert_rules.py pins its behaviour, and checks with promtool that every expression parses.
"""

import json
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
OBSERVABILITY = REPO / "deploy" / "observability"
ALERTS = OBSERVABILITY / "alerts.yml"
ALERT_TESTS = OBSERVABILITY / "alerts.test.yml"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "goglobal.json"
PROMETHEUS_CONFIGS = (OBSERVABILITY / "prometheus.yml", OBSERVABILITY / "prometheus.local.yml")

# Series Prometheus makes itself for every target, not read from /metrics.
SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
    ]
)
# Grafana's variables, replaced by something PromQL accepts: intervals by a duration, the others by a regex.
_INTERVAL_VARIABLES = re.compile(r"\$__(?:rate_interval|interval|range)\b")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$", re.DOTALL)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (e.g. `goglobal_http_request_duration_seconds_bucket`)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call is None and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def grafana_to_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced, as Prometheus would receive it."""
    if labels := _LABEL_VALUES.match(expr):
        expr = labels.group(1)  # a variable's query: label_values(<series selector>, <label>)
    return _VARIABLE.sub(".*", _INTERVAL_VARIABLES.sub("5m", expr))


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those nested in collapsed rows included (rows themselves too)."""
    found: list[dict[str, Any]] = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def dashboard_exprs() -> dict[str, str]:
    """Each PromQL expression of the dashboard (panel targets and template variables), by where it is."""
    board = dashboard()
    exprs = {
        f"panel {panel['title']!r} target {target['refId']}": target["expr"]
        for panel in panels(board)
        for target in panel.get("targets", [])
    }
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            exprs[f"variable {variable['name']!r}"] = query["query"] if isinstance(query, dict) else query
    return {where: grafana_to_promql(expr) for where, expr in exprs.items()}


def rules() -> list[dict[str, Any]]:
    loaded: dict[str, Any] = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def rule_exprs() -> dict[str, str]:
    return {f"rule {rule.get('alert') or rule.get('record')}": rule["expr"] for rule in rules()}


def exposed_names(families: list[Any]) -> set[str]:
    """Every series name Prometheus would store from these metric families (prometheus_client's parser), also for
    a labelled family without samples yet: a counter's `_total`, a histogram's `_bucket`, `_sum` and `_count`."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
        "gauge": ("",),
        "stateset": ("",),
        "unknown": ("",),
    }
    names: set[str] = set()
    for family in families:
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names

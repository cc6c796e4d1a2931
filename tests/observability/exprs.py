"""Every PromQL expression the project ships, and where it comes from.

Sources: the Grafana dashboards (grafana/dashboards/*.json: each panel target, each query
variable) and the Prometheus rule files (prometheus/*_rules.yml). Dashboard expressions contain
Grafana variables ($job, ${instance}, [[x]], $__rate_interval, ...); `substitute()` replaces them
with fixed values and refuses any variable it was not given, so a new variable cannot slip past
the tests unreplaced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.procs import ROOT

DASHBOARDS_DIR = ROOT / "grafana" / "dashboards"
PROMETHEUS_DIR = ROOT / "prometheus"
RULE_FILES = (PROMETHEUS_DIR / "recording_rules.yml", PROMETHEUS_DIR / "alert_rules.yml")
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}

# $name, ${name}, ${name:format} and the deprecated [[name]].
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
# label_values(metric_selector, label) / label_values(label)
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<sel>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$")


@dataclass(frozen=True, slots=True)
class Expr:
    """One PromQL expression: where it lives (file, panel or rule title, refId) and its text."""

    source: str
    title: str
    ref: str
    promql: str

    def where(self) -> str:
        return f"{self.source}: {self.title!r} [{self.ref}]"


@dataclass(frozen=True, slots=True)
class VariableQuery:
    """A dashboard query variable `label_values(selector, label)`."""

    source: str
    name: str
    selector: str
    label: str


def dashboard_paths() -> list[Path]:
    paths = sorted(DASHBOARDS_DIR.glob("*.json"))
    if not paths:
        raise AssertionError(f"no dashboards in {DASHBOARDS_DIR}")
    return paths


def load_dashboard(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested (collapsed) panels included; rows themselves too."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[Expr]:
    out = []
    for path in dashboard_paths():
        for panel in panels(load_dashboard(path)):
            for target in panel.get("targets", []):
                if "expr" in target:
                    out.append(Expr(path.name, panel["title"], target["refId"], target["expr"]))
    return out


def rule_exprs() -> list[Expr]:
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule["alert"]
                out.append(Expr(path.name, name, "expr", rule["expr"]))
    return out


def alert_names() -> list[str]:
    doc = yaml.safe_load((PROMETHEUS_DIR / "alert_rules.yml").read_text(encoding="utf-8"))
    return [r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r]


def variable_queries() -> list[VariableQuery]:
    out = []
    for path in dashboard_paths():
        for var in load_dashboard(path)["templating"]["list"]:
            if var["type"] != "query":
                continue
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = _LABEL_VALUES.match(query)
            if match is None:
                raise AssertionError(f"{path.name}: variable {var['name']}: only label_values(...) "
                                     f"queries are checked, got {query!r}")
            out.append(VariableQuery(path.name, var["name"], match["sel"] or "", match["label"]))
    return out


def variables_in(text: str) -> set[str]:
    return {a or b or c for a, b, c in _VARIABLE.findall(text)}


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace every Grafana variable in `text` with `values[name]`.

    Raises:
        KeyError: a variable that `values` does not name (a test must decide its value).
    """
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"no test value for the dashboard variable ${name} in {text!r}")
        return values[name]

    return _VARIABLE.sub(replace, text)

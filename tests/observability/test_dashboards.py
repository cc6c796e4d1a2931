"""The Grafana dashboards and the rules, against a real Prometheus watching a real WAIIDE Hub.

Scenarios:
1. The dashboards are provisionable anywhere: valid JSON, a stable uid, every panel and query on
   the `${datasource}` variable (a DS_PROMETHEUS input for UI import), no datasource uid of a
   particular Grafana; the provisioning files point Grafana at them.
2. Every panel has a description, a unit and thresholds; titles and ids are unique; the grid
   does not overlap; every variable the queries use is one the tests know how to fill in.
3. Every PromQL expression parses and runs: each dashboard query (variables substituted), each
   variable's selector, each recording and alert rule, sent to Prometheus' query API (400 = it
   does not parse, 422 = it cannot run).
4. With Prometheus scraping the gateway every second while the stack (supervisor, fake IDE,
   Jupyter, gateway with 2 workers, monitor) serves a bounded load with 4xx/5xx, upstream
   timeouts, uploads, WebSockets and one IDE restart: every query of every panel returns at
   least one series, with all servers selected and with the one server selected. A query that
   returns nothing fails with its dashboard, panel title and refId.
5. The dashboards' variables find the gateway's job and instance.
6. Loaded into that Prometheus (evaluated every second), every recording and alert rule is
   healthy, and no alert fires for the healthy, loaded stack.
7. A few panels show exactly what the load did: every component UP, the IDE's restart counted,
   a non-zero error ratio and upstream timeouts.
8. The JupyterHub scrape jobs (Kubernetes pods, DockerSpawner containers), fed the discovery
   labels real pods and containers have, relabel to one target per user server on port 8091
   with instance, user and server labels; sidecar ports, other networks and pending pods are
   dropped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import yaml

from tests.observability import exprs, load
from tests.observability.conftest import Observed
from tests.observability.exprs import DATASOURCE_REF, Expr
from tests.observability.scrape import (
    DOCKER_EXPECTED,
    DOCKER_JOB,
    GATEWAY_JOB,
    KUBERNETES_EXPECTED,
    KUBERNETES_JOB,
)
from tests.observability.servers import PrometheusServer, PromQLError
from tests.procs import ROOT

pytestmark = pytest.mark.slow  # a real Prometheus watching a loaded stack

PROVISIONING = ROOT / "grafana" / "provisioning"
# Fixed values for Grafana's built-in variables. $__rate_interval is at least 4 scrape intervals
# in Grafana; 1m holds ~60 samples here and is shorter than the test, so rates see the load.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
ANY = {**BUILTINS, "job": ".+", "instance": ".+"}  # for parsing: any value will do
SERIES_TIMEOUT_S = 20.0
RULES_TIMEOUT_S = 20.0
TARGETS_TIMEOUT_S = 30.0  # file discovery, then the scrape manager's 5 s update throttle


def one_server(observed: Observed) -> dict[str, str]:
    return {**BUILTINS, "job": GATEWAY_JOB, "instance": observed.instance}


def all_servers(observed: Observed) -> dict[str, str]:
    """What Grafana sends with "All" selected: job has no allValue, so it is the alternation of
    the job variable's values, escaped; instance has allValue .+ (see the dashboards)."""
    (job_var,) = [v for v in exprs.variable_queries() if v.name == "job"][:1]
    jobs = sorted({s["metric"][job_var.label]
                   for s in observed.prometheus.query(job_var.selector)})
    assert jobs, "the job variable finds no job"
    return {**BUILTINS, "job": "(" + "|".join(_grafana_escape(j) for j in jobs) + ")",
            "instance": ".+"}


def _grafana_escape(value: str) -> str:
    """A multi-value for a Prometheus regex as Grafana writes it: regex metacharacters get a
    backslash, itself doubled inside the PromQL string literal."""
    return re.sub(r"""([$^*{}\[\]'+?.()|])""", r"\\\\\1", value.replace("\\", "\\\\\\\\"))


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


# ---- 1, 2: static ------------------------------------------------------------------------------

def test_dashboards_are_provisionable_without_a_particular_grafana() -> None:
    uids = set()
    for path in exprs.dashboard_paths():
        dash = exprs.load_dashboard(path)
        assert dash["uid"] and dash["uid"] not in uids and dash["id"] is None, path.name
        uids.add(dash["uid"])
        assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"], path.name
        (ds_var,) = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
        assert (ds_var["name"], ds_var["query"]) == ("datasource", "prometheus"), path.name
        for panel in exprs.panels(dash):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == DATASOURCE_REF, (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE_REF, (path.name, panel["title"])
        for key, value in _walk(dash):
            if key == "datasource" and isinstance(value, dict):
                assert value["uid"] in ("${datasource}", "-- Grafana --"), (path.name, value)
            if key == "uid" and isinstance(value, str) and value != dash["uid"]:
                assert value in ("${datasource}", "-- Grafana --"), (path.name, value)


def test_provisioning_files_point_grafana_at_the_dashboards() -> None:
    (datasource,) = yaml.safe_load(
        (PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["access"] == "proxy"
    # $__rate_interval is derived from it: it must be the scrape interval of the example config.
    example = yaml.safe_load((exprs.PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert datasource["jsonData"]["timeInterval"] == example["global"]["scrape_interval"]
    (provider,) = yaml.safe_load(
        (PROVISIONING / "dashboards" / "waiide-hub.yml").read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_panels_have_descriptions_units_thresholds_and_a_tidy_grid() -> None:
    for path in exprs.dashboard_paths():
        dash = exprs.load_dashboard(path)
        all_panels = list(exprs.panels(dash))
        ids = [p["id"] for p in all_panels]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        titles = [p["title"] for p in all_panels if p["type"] != "row"]
        assert len(titles) == len(set(titles)), f"{path.name}: duplicate panel titles"
        cells: dict[tuple[int, int], str] = {}
        for panel in all_panels:
            where = f"{path.name}: {panel['title']!r}"
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, where
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, f"{where} overlaps {cells[(x, y)]!r}"
                    cells[(x, y)] = panel["title"]
            if panel["type"] == "row":
                continue
            assert len(panel.get("description", "")) >= 40, f"{where}: no real description"
            defaults = panel["fieldConfig"]["defaults"]
            assert defaults.get("unit"), f"{where}: no unit"
            assert defaults["thresholds"]["steps"], f"{where}: no thresholds"
            assert panel["targets"] and all(t.get("expr") for t in panel["targets"]), where


def test_queries_use_only_variables_the_tests_fill_in() -> None:
    used = set()
    for expr in exprs.dashboard_exprs():
        used |= exprs.variables_in(expr.promql)
    for var in exprs.variable_queries():
        used |= exprs.variables_in(var.selector)
    assert used <= set(ANY), f"unknown dashboard variables: {used - set(ANY)}"
    assert {"job", "instance", "__rate_interval"} <= used


# ---- 3: every expression parses and runs -------------------------------------------------------

def _all_expressions() -> list[Expr]:
    out = [Expr(e.source, e.title, e.ref, exprs.substitute(e.promql, ANY))
           for e in exprs.dashboard_exprs()]
    out += [Expr(v.source, f"variable {v.name}", "selector", exprs.substitute(v.selector, ANY))
            for v in exprs.variable_queries() if v.selector]
    return out + exprs.rule_exprs()


def test_every_expression_parses(prometheus: PrometheusServer) -> None:
    expressions = _all_expressions()
    assert len(expressions) > 40
    failures = []
    for expr in expressions:
        try:
            prometheus.query(expr.promql)
        except PromQLError as exc:
            failures.append(f"{expr.where()}: {exc}\n    {expr.promql}")
    assert not failures, "PromQL that Prometheus refuses:\n" + "\n".join(failures)


# ---- 4-8: live ---------------------------------------------------------------------------------

def _has_series(prometheus: PrometheusServer, promql: str) -> bool:
    try:
        return bool(prometheus.query(promql))
    except PromQLError:
        return False  # reported as empty here, and with the reason by the parse test


def _empty_queries(prometheus: PrometheusServer, values: Mapping[str, str]) -> list[str]:
    """The queries still returning nothing at the deadline (most return data at once)."""
    pending = list(exprs.dashboard_exprs())
    deadline = time.monotonic() + SERIES_TIMEOUT_S
    while True:
        pending = [e for e in pending
                   if not _has_series(prometheus, exprs.substitute(e.promql, values))]
        if not pending or time.monotonic() > deadline:
            return [f"{e.where()}: {exprs.substitute(e.promql, values)}" for e in pending]
        time.sleep(0.5)


@pytest.mark.parametrize("selection", ["all servers", "one server"])
def test_every_panel_query_returns_series(observed: Observed, selection: str) -> None:
    values = all_servers(observed) if selection == "all servers" else one_server(observed)
    empty = _empty_queries(observed.prometheus, values)
    assert not empty, (f"panels with no data ({selection}) after a load of "
                       f"{observed.report.requests} requests:\n" + "\n".join(empty))


def test_variables_find_the_gateway(observed: Observed) -> None:
    found: dict[str, set[str]] = {}
    for var in exprs.variable_queries():
        selector = exprs.substitute(var.selector, one_server(observed))
        found[var.name] = {s["metric"].get(var.label, "")
                           for s in observed.prometheus.query(selector)}
    assert GATEWAY_JOB in found["job"], found
    assert observed.instance in found["instance"], found


def test_rules_are_healthy_and_no_alert_fires(observed: Observed) -> None:
    prom = observed.prometheus

    def rules() -> list[dict[str, Any]]:
        return [r for g in prom.api("rules")["groups"] for r in g["rules"]]

    prom.wait_for("every rule evaluated",
                  lambda: all(r["health"] != "unknown" for r in rules()), RULES_TIMEOUT_S)
    current = rules()
    assert len(current) == len(exprs.rule_exprs())
    broken = [f"{r['name']}: {r.get('lastError')}" for r in current if r["health"] != "ok"]
    assert not broken, broken
    firing = [a for a in prom.api("alerts")["alerts"] if a["state"] == "firing"]
    assert not firing, firing


def _values(prom: PrometheusServer, title: str, values: Mapping[str, str],
            label: str) -> dict[str, float]:
    (panel_expr,) = [e for e in exprs.dashboard_exprs() if e.title == title][:1]
    result = prom.query(exprs.substitute(panel_expr.promql, values))
    return {s["metric"].get(label, ""): float(s["value"][1]) for s in result}


def test_panels_show_what_the_load_did(observed: Observed) -> None:
    prom, values = observed.prometheus, one_server(observed)
    all_up = {"waiide": 1, "singleuser": 1, "gateway": 1, "monitor": 1}
    # A probe can miss its 0.5 s deadline on a busy machine: allow the next rounds to settle it.
    prom.wait_for(f"Components up == {all_up}",
                  lambda: _values(prom, "Components up", values, "component") == all_up,
                  SERIES_TIMEOUT_S)
    restarts = _values(prom, "Restarts in the time range", values, "component")
    assert restarts["waiide"] >= 1 and restarts["gateway"] == 0, restarts
    # Only increases after a series' first scrape count, so the ratio depends on scrape timing
    # (see the late 503s in conftest): positive and a fraction is what can be asserted.
    ratio = _values(prom, "Error ratio (5xx / all)", values, "")[""]
    assert 0 < ratio <= 1, ratio
    upstream = _values(prom, "Upstream errors and timeouts", values, "kind")
    assert upstream["timeout"] > 0, upstream
    report = observed.report
    assert report.of("get") == {200: load.PROXIED_GETS}
    assert report.of("ide-503") == {503: load.IDE_503S}
    assert report.of("slow") == {504: load.SLOW_REQUESTS}
    assert report.of("upload") == {200: load.UPLOADS}
    assert report.ws_echoes == load.WEBSOCKETS * load.WS_MESSAGES


def _targets(prom: PrometheusServer, job: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    active = prom.api("targets", {"state": "active"})["activeTargets"]
    return {(t["scrapeUrl"], tuple(sorted(t["labels"].items())))
            for t in active if t["labels"].get("job") == job}


def test_jupyterhub_scrape_jobs_relabel_to_one_target_per_server(observed: Observed) -> None:
    prom = observed.prometheus
    prom.wait_for("the JupyterHub jobs' targets",
                  lambda: bool(_targets(prom, KUBERNETES_JOB) and _targets(prom, DOCKER_JOB)),
                  TARGETS_TIMEOUT_S)
    assert _targets(prom, KUBERNETES_JOB) == KUBERNETES_EXPECTED
    assert _targets(prom, DOCKER_JOB) == DOCKER_EXPECTED

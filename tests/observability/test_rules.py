"""promtool over the shipped Prometheus files: config, rules, and the alerts' unit tests.

Scenarios:
1. `promtool check config prometheus/prometheus.yml` passes (it also loads both rule files).
2. `promtool check rules` passes on the recording and the alert rules.
3. The Kubernetes scrape fragment passes `promtool check config` once its kubernetes_sd_configs
   (which Debian's build cannot parse) is swapped for a static target: everything else in it,
   the relabeling above all, is checked by the real parser.
4. `promtool test rules prometheus/tests/*.yml` passes.
5. Every alert of alert_rules.yml has a unit test where it fires and one where it must not.
A missing promtool fails these tests with the package to install; it never skips them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.observability.exprs import PROMETHEUS_DIR, RULE_FILES, alert_names
from tests.observability.scrape import kubernetes_jobs
from tests.observability.servers import PROMTOOL, require_tool

PROMTOOL_TIMEOUT_S = 60.0


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> str:
    """Run promtool; fail with its whole output unless it exits 0."""
    binary = require_tool(PROMTOOL)
    proc = subprocess.run([str(binary), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=PROMTOOL_TIMEOUT_S, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} exited {proc.returncode}:\n{output}"
    return output


def test_example_config_checks() -> None:
    output = promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: 2 rule files found" in output, output
    assert "WARNING" not in output, output


def test_rule_files_check() -> None:
    output = promtool("check", "rules", *(str(path) for path in RULE_FILES))
    assert output.count("SUCCESS") == len(RULE_FILES), output


def test_kubernetes_fragment_checks_apart_from_its_discovery(tmp_path: Path) -> None:
    jobs = kubernetes_jobs()
    assert [job["job_name"] for job in jobs] == ["waiide-hub-kubernetes"]
    for job in jobs:
        assert job["kubernetes_sd_configs"][0]["role"] == "pod"
        del job["kubernetes_sd_configs"]
        job["static_configs"] = [{"targets": ["127.0.0.1:8091"]}]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": jobs}))
    promtool("check", "config", str(config), cwd=tmp_path)


def test_alert_unit_tests_pass() -> None:
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests, "no promtool unit tests in prometheus/tests/"
    output = promtool("test", "rules", *(str(path.relative_to(PROMETHEUS_DIR)) for path in tests))
    assert "FAILED" not in output, output


def _alert_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in sorted((PROMETHEUS_DIR / "tests").glob("*.yml")):
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def test_every_alert_is_tested_firing_and_silent() -> None:
    cases = _alert_cases()
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    alerts = set(alert_names())
    assert len(alerts) >= 5
    assert alerts - fires == set(), "alerts with no unit test where they fire"
    assert alerts - silent == set(), "alerts with no unit test where they must stay silent"
    assert (fires | silent) - alerts == set(), "unit tests of alerts that do not exist"

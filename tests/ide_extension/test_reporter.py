"""The waiide-activity extension's VS Code-free parts (config, Reporter, Transport) under the
Node that code-server runs, against the recording server on a real loopback socket.

Scenarios:
 1. Settings: defaults; a bad value, a non-loopback or non-http URL, only one of URL and
    secret: an error that names the variable and the value; neither: off (null).
 2. A burst of causes within the minimum interval: the first report at once, the rest coalesced
    into one more report a minimum interval later, with every cause and the newest `at`.
 3. The server answering 503: the report is retried (with back-off) until it is accepted, with
    its causes and `at` unchanged.
 4. Busy work: sent when it changes, re-sent every busy interval while there is some, a last
    report with `busy: []` when it ends; then nothing more.
 5. An `at` older than what the server has (a lower bound that did not move) is not sent.
 6. `urgent` (Keep working) goes out ahead of the rate limit.
 7. The notice: 204 is none; 200 with id and stops_at is returned; a malformed one is an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.procs import RESOURCES
from tests.resources.activity_recorder import ActivityRecorder

SECRET = "reporter-test-secret"
DRIVER = RESOURCES / "activity_driver.js"
NODE_TIMEOUT_S = 60.0


def _node() -> str:
    """The Node 24 scripts/setup.sh installs for code-server (the extension host's Node)."""
    home = Path(os.environ.get("WAIIDE_HUB_HOME") or Path.home() / ".cache" / "waiide-hub")
    for arch in ("x64", "arm64"):
        node = home / "node-24" / "node_modules" / "node" / "node_modules" / f"node-linux-{arch}"
        if os.access(node / "bin" / "node", os.X_OK):
            return str(node / "bin" / "node")
    pytest.fail(f"Node 24 is missing under {home}/node-24: run scripts/setup.sh test",
                pytrace=False)


def _run(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run([_node(), str(DRIVER), *args], capture_output=True, text=True,
                          timeout=NODE_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _config(env: Mapping[str, str]) -> dict[str, Any]:
    return _run("config", json.dumps(env))[0]


@pytest.fixture
def recorder() -> Iterator[ActivityRecorder]:
    with ActivityRecorder(SECRET) as running:
        yield running
        assert running.rejected == [], running.rejected


def _env(recorder: ActivityRecorder, **extra: str) -> dict[str, str]:
    return {"WAIIDE_ACTIVITY_URL": recorder.url, "WAIIDE_ACTIVITY_SECRET": SECRET,
            "WAIIDE_ACTIVITY_MIN_INTERVAL": "1", **extra}


def _script(recorder: ActivityRecorder, steps: list[dict[str, Any]],
            **extra: str) -> list[dict[str, Any]]:
    return _run("script", json.dumps(_env(recorder, **extra)), json.dumps(steps))


def test_settings_defaults_and_errors() -> None:
    url = "http://127.0.0.1:8091/api/activity/ide"
    good = _config({"WAIIDE_ACTIVITY_URL": url + "/", "WAIIDE_ACTIVITY_SECRET": "s"})
    assert good["config"] == {"url": url, "secret": "s", "minIntervalS": 5,
                              "busyIntervalS": 30, "noticeIntervalS": 10}
    assert _config({}) == {"config": None}
    assert _config({"WAIIDE_ACTIVITY_URL": "http://[::1]:1/x", "WAIIDE_ACTIVITY_SECRET": "s",
                    "WAIIDE_ACTIVITY_NOTICE_INTERVAL": "0"})["config"]["noticeIntervalS"] == 0
    bad = {
        ("WAIIDE_ACTIVITY_URL", "http://10.0.0.1:8091/a"): "must be loopback",
        ("WAIIDE_ACTIVITY_URL", "https://127.0.0.1/a"): "only http://",
        ("WAIIDE_ACTIVITY_URL", "not a url"): "not a URL",
        ("WAIIDE_ACTIVITY_URL", "http://127.0.0.1/a?x=1"): "no query",
        ("WAIIDE_ACTIVITY_MIN_INTERVAL", "fast"): "not a number",
        ("WAIIDE_ACTIVITY_MIN_INTERVAL", "0"): "between 0.5 and 300",
        ("WAIIDE_ACTIVITY_BUSY_INTERVAL", "-5"): "not a number",
    }
    for (key, value), why in bad.items():
        env = {"WAIIDE_ACTIVITY_URL": url, "WAIIDE_ACTIVITY_SECRET": "s", key: value}
        answer = _config(env)
        assert answer.get("name") == "ConfigError", (key, value, answer)
        assert key in answer["error"] and value in answer["error"] and why in answer["error"]
    only_url = _config({"WAIIDE_ACTIVITY_URL": url})
    assert "WAIIDE_ACTIVITY_SECRET is not set" in only_url["error"]


def test_a_burst_is_coalesced_into_two_reports(recorder: ActivityRecorder) -> None:
    steps: list[dict[str, Any]] = []
    for cause in ("editor", "editor", "save", "open", "editor", "terminal-input"):
        steps += [{"do": "activity", "cause": cause}, {"do": "sleep", "s": 0.1}]
    started = time.time()
    _script(recorder, [*steps, {"do": "sleep", "s": 2.0}])
    reports = recorder.reports()
    assert [r.causes for r in reports] == [
        ["editor"], ["editor", "save", "open", "terminal-input"]], [r.body for r in reports]
    first, second = reports
    assert second.received_mono - first.received_mono >= 0.9
    assert second.body["cause"] == "terminal-input"
    assert started <= first.body["at"] < second.body["at"] <= time.time()
    assert first.body["session"] == second.body["session"]
    assert first.body["busy"] == [] and first.body["v"] == 1


def test_a_refused_report_is_retried_unchanged(recorder: ActivityRecorder) -> None:
    recorder.fail_next(2)
    lines = _script(recorder, [{"do": "activity", "cause": "editor", "ago_s": 3},
                               {"do": "sleep", "s": 8.0}])
    reports = recorder.reports()
    assert recorder.failed_reports == 2
    assert len(reports) == 1, [r.body for r in reports]
    assert reports[0].causes == ["editor"]
    assert reports[0].received_wall - reports[0].body["at"] >= 3
    assert any("will retry" in line.get("log", "") for line in lines), lines


def test_busy_work_is_sent_repeated_and_cleared(recorder: ActivityRecorder) -> None:
    sleep = {"kind": "terminal", "name": "sleep 30"}
    _script(recorder, [{"do": "busy", "items": [sleep]}, {"do": "sleep", "s": 3.5},
                       {"do": "busy", "items": []}, {"do": "sleep", "s": 3.0}],
            WAIIDE_ACTIVITY_BUSY_INTERVAL="1")
    reports = recorder.reports()
    busy = [r for r in reports if r.busy == [sleep]]
    assert len(busy) >= 3, [r.body for r in reports]  # at once, then about every second
    assert all(r.causes == [] and r.body["at"] is None for r in reports)
    assert reports[-1].busy == [] and reports[-2].busy == [sleep]
    assert busy[0].body["busy_ttl_s"] == 3


def test_dispose_clears_reported_busy_work(recorder: ActivityRecorder) -> None:
    _script(recorder, [{"do": "busy", "items": [{"kind": "task", "name": "build"}]},
                       {"do": "sleep", "s": 0.5}, {"do": "dispose"}])
    assert [r.busy for r in recorder.reports()] == [[{"kind": "task", "name": "build"}], []]


def test_an_older_time_than_reported_is_not_sent(recorder: ActivityRecorder) -> None:
    _script(recorder, [{"do": "activity", "cause": "input"}, {"do": "sleep", "s": 1.5},
                       {"do": "activity", "cause": "input", "ago_s": 70},
                       {"do": "sleep", "s": 1.5}])
    assert [r.causes for r in recorder.reports()] == [["input"]]


def test_urgent_goes_ahead_of_the_rate_limit(recorder: ActivityRecorder) -> None:
    _script(recorder, [{"do": "activity", "cause": "editor"}, {"do": "sleep", "s": 0.2},
                       {"do": "urgent", "cause": "keep-working"}, {"do": "sleep", "s": 0.5}],
            WAIIDE_ACTIVITY_MIN_INTERVAL="30")
    reports = recorder.reports()
    assert [r.causes for r in reports] == [["editor"], ["keep-working"]]
    assert reports[1].received_mono - reports[0].received_mono < 5


def test_the_notice(recorder: ActivityRecorder) -> None:
    lines = _script(recorder, [{"do": "notice"}])
    assert {"notice": None} in lines
    recorder.set_notice({"id": "idle-1", "stops_at": 1764000300.5})
    lines = _script(recorder, [{"do": "notice"}])
    assert {"notice": {"id": "idle-1", "stops_at": 1764000300.5}} in lines
    recorder.set_notice({"stops_at": "soon"})
    lines = _script(recorder, [{"do": "notice"}])
    errors = [line["notice_error"] for line in lines if "notice_error" in line]
    assert errors and '"id" (string)' in errors[0], lines

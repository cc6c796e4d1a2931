"""gateway/status.py: /api/status and /api/services bodies for every kind of status view."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.status import public_view, services_response, status_response
from monitor.record import ComponentStatus, RecordReader, StatusRecord, StatusView

NOW = 1700000010.0
IDE = ComponentStatus(name="waiide", state="up", url="http://127.0.0.1:8080/healthz",
                      http_status=200, latency_s=0.003, last_probe_at=1700000008.0,
                      last_success_at=1700000008.0, liveness="expired", pid=11, pid_alive=True,
                      uptime_s=99.5, restarts=1, rss_bytes=4096, cpu_percent=2.5, cpu_seconds=3.0)
SINGLEUSER_DOWN = ComponentStatus(name="singleuser", state="down", reason="no answer within 2s",
                                  url="http://127.0.0.1:8090/api", latency_s=2.0,
                                  last_probe_at=1700000008.0)
IDE_DOWN = ComponentStatus(name="waiide", state="down", reason="HTTP 502 from x", http_status=502,
                           last_probe_at=1700000008.0)


def view_of(*components: ComponentStatus, overall: str = "healthy") -> StatusView:
    record = StatusRecord(overall=overall, components=components)  # type: ignore[arg-type]
    return StatusView(state=record.overall, record=record, written_at=1700000009.0,
                      interval_s=5.0, seq=2, writer_pid=7)


def test_healthy() -> None:
    code, body = status_response(view_of(IDE), NOW)
    assert code == 200
    assert body == {
        "status": "healthy", "healthy": True, "reason": None, "checked_at": 1700000009.0,
        "age_s": 1.0, "interval_s": 5.0,
        "components": {"waiide": {
            "state": "up", "reason": None, "last_probe_at": 1700000008.0, "last_probe_age_s": 2.0,
            "latency_s": 0.003, "http_status": 200, "liveness": "expired"}},
    }
    json.dumps(body, allow_nan=False)


def test_degraded_is_still_200_with_a_reason() -> None:
    code, body = status_response(view_of(IDE, SINGLEUSER_DOWN, overall="degraded"), NOW)
    assert code == 200 and body["status"] == "degraded" and body["healthy"] is True
    assert body["reason"] == "singleuser down: no answer within 2s"
    assert body["components"]["singleuser"]["state"] == "down"


def test_ide_down_is_503() -> None:
    code, body = status_response(view_of(IDE_DOWN, overall="unhealthy"), NOW)
    assert code == 503 and body["healthy"] is False and body["status"] == "unhealthy"
    assert body["reason"] == "waiide down: HTTP 502 from x"


def test_no_record_is_503_unknown(tmp_path: Path) -> None:
    view = RecordReader(tmp_path / "missing").read()
    code, body = status_response(view, NOW)
    assert code == 503
    assert body["status"] == "unknown" and body["healthy"] is False
    assert body["reason"].startswith("no record yet")
    assert body["components"] == {} and body["checked_at"] is None and body["age_s"] is None


def test_stale_record_is_503_and_shows_last_probe() -> None:
    record = StatusRecord(overall="healthy", components=(IDE,))
    view = StatusView(state="unknown", reason="record is stale (age 17.2s > 3 intervals)",
                      last_record=record, written_at=1700000000.0, interval_s=5.0)
    code, body = status_response(view, NOW)
    assert code == 503 and body["reason"] == "record is stale (age 17.2s > 3 intervals)"
    ide = body["components"]["waiide"]
    assert (ide["state"], ide["liveness"], ide["last_probe_at"]) == ("unknown", "unknown",
                                                                      1700000008.0)
    assert body["age_s"] == 10.0


def test_services() -> None:
    code, body = services_response(view_of(IDE, SINGLEUSER_DOWN, overall="degraded"), NOW)
    assert code == 200
    ide = body["services"]["waiide"]
    assert ide == {
        "state": "up", "reason": None, "last_probe_at": 1700000008.0, "last_probe_age_s": 2.0,
        "latency_s": 0.003, "http_status": 200, "liveness": "expired",
        "url": "http://127.0.0.1:8080/healthz", "pid": 11, "pid_alive": True, "uptime_s": 99.5,
        "restarts": 1, "rss_bytes": 4096, "cpu_percent": 2.5, "last_success_at": 1700000008.0,
    }
    assert body["services"]["singleuser"]["pid"] is None
    assert body["status"] == "degraded"
    code, body = services_response(StatusView(state="unknown", reason="corrupt: bad magic"), NOW)
    assert code == 200 and body["services"] == {} and body["reason"] == "corrupt: bad magic"


def test_public_view_keeps_states_and_reasons_without_addresses() -> None:
    down = ComponentStatus(name="waiide", state="down", last_probe_at=1700000008.0,
                           reason="cannot connect to unix:/tmp/waiide-hub-0-8091/waiide.sock:"
                                  "/healthz: [Errno 111] Connection refused")
    jupyter = ComponentStatus(name="singleuser", state="down", last_probe_at=1700000008.0,
                              reason="HTTP 503 from http://127.0.0.1:8090/user/alice/api")
    code, body = status_response(view_of(down, jupyter, overall="unhealthy"), NOW)
    public = public_view(body, "components")
    assert code == 503
    assert public["components"] == {
        "waiide": {"state": "down",
                   "reason": "cannot connect to <internal> [Errno 111] Connection refused"},
        "singleuser": {"state": "down", "reason": "HTTP 503 from <internal>"}}
    assert public["status"] == "unhealthy" and public["healthy"] is False
    assert "alice" not in json.dumps(public) and "8090" not in json.dumps(public)
    _, services = services_response(view_of(IDE, SINGLEUSER_DOWN, overall="degraded"), NOW)
    assert public_view(services, "services")["services"] == {
        "waiide": {"state": "up", "reason": None},
        "singleuser": {"state": "down", "reason": "no answer within 2s"}}

"""What the gateway's per-request bookkeeping costs: metrics recording and status-record reads.

    .venv/bin/python bench/request_path_cost.py [--calls N]

Prints µs per call, side by side: recording a finished request's metrics in multiprocess mode
(what a worker under the supervisor does) and in single-process mode, reading the status record
(the lock-free seqlock read every /api/status does), and building /api/status's body from it.
Each figure comes from a fresh subprocess, because prometheus-client fixes its mode at import.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PROBE = r'''
import json, sys, time, os
calls = int(sys.argv[1]); what = sys.argv[2]; record_path = sys.argv[3]
from gateway.metrics import GatewayMetrics
from gateway.status import status_response
from monitor.record import RecordReader, RecordWriter, StatusRecord, ComponentStatus

def per_call(fn):
    fn()  # warm: label children bound, files created
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6

out = {}
if what == "metrics":
    metrics = GatewayMetrics(multiproc_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    def request():
        token = metrics.request_started("proxy")
        metrics.request_finished(token, "GET", "proxy", 200, 0, 1024)
    out["request"] = per_call(request)
else:
    from pathlib import Path
    writer = RecordWriter(Path(record_path), interval_s=60.0)
    writer.open()
    now = time.time()
    comps = tuple(ComponentStatus(name=n, state="up", url="http://127.0.0.1:1/", http_status=200,
                                  latency_s=0.001, last_probe_at=now, last_success_at=now,
                                  pid=1, pid_alive=True, uptime_s=10.0, restarts=0,
                                  rss_bytes=1 << 20, cpu_percent=1.0, cpu_seconds=1.0)
                  for n in ("waiide", "singleuser", "gateway", "monitor"))
    writer.write(StatusRecord(overall="healthy", components=comps))
    reader = RecordReader(Path(record_path))
    out["read"] = per_call(reader.read)
    out["status_body"] = per_call(lambda: json.dumps(status_response(reader.read(), time.time())[1]))
    reader.close(); writer.close()
print(json.dumps(out))
'''


def run(what: str, calls: int, env: dict[str, str], record: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(calls), what, record], cwd=ROOT,
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=300, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"probe {what} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with tempfile.TemporaryDirectory() as tmp:
        multi = run("metrics", args.calls, {**base, "PROMETHEUS_MULTIPROC_DIR": tmp}, "")
        single = run("metrics", args.calls, base, "")
        status = run("status", args.calls, base, str(Path(tmp) / "status.record"))
    print(f"{'per request':40} {'µs/call':>8}")
    print(f"{'metrics, multiprocess mode (supervised)':40} {multi['request']:8.2f}")
    print(f"{'metrics, single-process mode':40} {single['request']:8.2f}")
    print(f"{'status record read (seqlock, no I/O)':40} {status['read']:8.2f}")
    print(f"{'/api/status body (read + build + JSON)':40} {status['status_body']:8.2f}")


if __name__ == "__main__":
    main()

"""Gateway CPU per request for 1 KiB GETs, for two source trees side by side (A B A B ...).

    .venv/bin/python bench/edge_cost.py --tree /path/to/old/checkout --tree . --rounds 4

Throughput on a shared, busy machine swings by tens of percent between runs; the CPU time the
gateway's own processes spend per request does not depend much on what else runs. Each tree's
`python -m gateway` (one worker, auth off, metrics on as in `make bench`) is started in turn in
front of the benchmark's nginx upstream, loaded with wrk (16 connections) for `--duration-s`,
and its process tree's CPU seconds are divided by the requests served. wrk's req/s and p99 are
printed too, for what they are worth on the machine at hand.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import Service, free_port
from bench.tools import Tools
from bench.upstream import running_upstream

LOOPBACK = "127.0.0.1"


def _cpu_s(pid: int) -> float:
    total = 0.0
    proc = psutil.Process(pid)
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def _wrk(tools: Tools, url: str, duration_s: float) -> tuple[int, float, float]:
    """(requests, req/s, p99 ms) of one wrk run."""
    out = subprocess.run([tools.wrk, "-t1", "-c16", f"-d{duration_s:g}s", "--latency", url],
                         capture_output=True, text=True, timeout=duration_s + 30,
                         check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return requests, rate, float(p99.group(1)) * scale


def _measure(tools: Tools, tree: Path, upstream_port: int, workdir: Path,
             duration_s: float) -> tuple[float, float, float]:
    port = free_port()
    prom = workdir / f"prom-{port}"
    prom.mkdir()
    env = tools.env(HOST=LOOPBACK, API_SERVER_PORT=str(port), PORT=str(free_port()),
                    WAIIDE_HOST=LOOPBACK, WAIIDE_PORT=str(upstream_port), GATEWAY_WORKERS="1",
                    GATEWAY_AUTH="none", PYTHONPATH=str(tree), PROMETHEUS_MULTIPROC_DIR=str(prom),
                    WAIIDE_HUB_STATUS_PATH=str(workdir / f"status-{port}"))
    service = Service("gateway", [sys.executable, "-m", "gateway"], workdir / f"gw-{port}.log",
                      env=env, cwd=tree)
    service.start()
    try:
        url = f"http://{LOOPBACK}:{port}/f1k"
        service.ready([url], 60)
        _wrk(tools, url, 1.0)  # warm up
        before = _cpu_s(service.pid)
        requests, rate, p99 = _wrk(tools, url, duration_s)
        used = _cpu_s(service.pid) - before
    finally:
        service.stop()
    return used / requests * 1e6, rate, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration-s", type=float, default=5.0)
    args = parser.parse_args()
    tools = Tools.from_env(dict(__import__("os").environ))
    results: dict[Path, list[tuple[float, float, float]]] = {t: [] for t in args.tree}
    with tempfile.TemporaryDirectory(prefix="edge-cost-") as tmp:
        workdir = Path(tmp)
        with running_upstream(tools, workdir, large_bytes=1 << 20) as upstream:
            for round_ in range(args.rounds):
                for tree in args.tree:
                    got = _measure(tools, tree.resolve(), upstream.port, workdir, args.duration_s)
                    results[tree].append(got)
                    print(f"round {round_ + 1} {tree}: {got[0]:.0f} us CPU/request, "
                          f"{got[1]:,.0f} req/s, p99 {got[2]:.1f} ms", flush=True)
    print(f"\nload avg {psutil.getloadavg()[0]:.1f}; medians over {args.rounds} rounds:")
    for tree, rows in results.items():
        cpu, rate, p99 = (statistics.median(col) for col in zip(*rows))
        print(f"  {tree}: {cpu:.0f} us CPU/request, {rate:,.0f} req/s, p99 {p99:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The memory budget: PSS of every WAIIDE Hub process except the IDE, next to a plain Jupyter server
with jupyter-server-proxy (what a user would run instead).

    .venv/bin/python bench/memory.py                      # lightweight mode, 2 gateway workers
    .venv/bin/python bench/memory.py --mode full --workers 4 --json out.json

The budget (issue 14): the whole stack except the IDE at most 120 MiB PSS in lightweight mode
with 2 workers. PSS (proportional set size, /proc/<pid>/smaps_rollup) charges each shared page
to the processes sharing it in equal parts, so the per-process figures add up to what the stack
really costs the machine; RSS would count the interpreter's shared pages once per process.

What runs: `supervisor_main.py` with a stand-in IDE (`tests/resources/fake_waiide.py` on the
default private socket; the IDE is outside the budget and shown apart), on free loopback ports,
HOME and XDG folders in a temp directory. After the banner says ready, a few requests go through
the gateway (proxy, /api/status, /metrics) so every worker has served, then the stack idles for
`--settle-s` seconds (the monitor probes meanwhile) before the sample. The comparison is
`jupyter server` with jupyter-server-proxy serving the same stand-in at /ide/, sampled after a
proxied request. Every process is stopped by process group, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
FAKE_IDE = ROOT / "tests" / "resources" / "fake_waiide.py"
BUDGET_MIB = 120.0
READY_TIMEOUT_S = 90.0
KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProcMemory:
    """One process: what it is and its memory in bytes."""

    role: str
    pid: int
    pss: int
    rss: int
    uss: int
    in_budget: bool


def smaps_rollup(pid: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/smaps_rollup, in bytes."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                fields[name] = int(parts[0]) * KIB
    return fields


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _role(proc: psutil.Process, ide_pids: set[int], root_pid: int, root_role: str) -> str:
    """A readable name for a process of the stack, from its command line."""
    if proc.pid == root_pid:
        return root_role
    if proc.pid in ide_pids:
        return "IDE (stand-in, outside the budget)"
    cmd = " ".join(proc.cmdline())
    if "resource_tracker" in cmd:
        return "multiprocessing resource tracker"
    parent = proc.parent()
    if parent is not None and "-m gateway" in " ".join(parent.cmdline()):
        # forked children show their parent's command line; only the workers hold a listener
        # (gateway.forking closes the sync manager's copies)
        listening = any(c.status == psutil.CONN_LISTEN for c in proc.net_connections("tcp"))
        return "gateway worker" if listening else "Sanic sync manager"
    if "-m gateway" in cmd:
        return "gateway main"
    if "-m monitor" in cmd:
        return "monitor"
    if "jupyter" in cmd:
        return "jupyter server"
    return cmd[:70]


def sample_tree(root_pid: int, root_role: str,
                ide_root: int | None = None) -> list[ProcMemory]:
    """Every process under `root_pid` (itself included) with its PSS, RSS and USS."""
    root = psutil.Process(root_pid)
    ide_pids: set[int] = set()
    if ide_root is not None:
        with contextlib.suppress(psutil.NoSuchProcess):  # the IDE is not running: nothing to skip
            ide = psutil.Process(ide_root)
            ide_pids = {ide_root, *(p.pid for p in ide.children(recursive=True))}
    found = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            mem = smaps_rollup(proc.pid)
            role = _role(proc, ide_pids, root_pid, root_role)
        except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError):
            continue  # ended while we looked
        uss = mem.get("Private_Clean", 0) + mem.get("Private_Dirty", 0)
        found.append(ProcMemory(role, proc.pid, mem.get("Pss", 0), mem.get("Rss", 0), uss,
                                proc.pid not in ide_pids))
    return found


@contextlib.contextmanager
def _started(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # ended just now
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _get(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as reply:
            reply.read()
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _wait_log(log: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"not ready ({text!r}):\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def _isolated_env(base: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GATEWAY_", "JUPYTER", "WAIIDE_", "MONITOR_", "SUPERVISOR_"))
           and key not in ("PORT", "HOST", "API_SERVER_PORT", "PROMETHEUS_MULTIPROC_DIR")}
    for name in ("home", "data", "config", "cache", "run"):
        (base / name).mkdir(mode=0o700, parents=True, exist_ok=True)
    env.update(HOME=str(base / "home"), XDG_DATA_HOME=str(base / "data"),
               XDG_CONFIG_HOME=str(base / "config"), XDG_CACHE_HOME=str(base / "cache"),
               XDG_RUNTIME_DIR=str(base / "run"), PYTHONPATH=str(ROOT))
    return env


def measure_stack(base: Path, mode: str, workers: int, settle_s: float) -> list[ProcMemory]:
    """Start the stack, warm it up, let it idle, sample it."""
    port, api_port = _free_port(), _free_port()
    token = "memory-bench-token"
    env = _isolated_env(base)
    env.update(USE_ALL_COMPONENTS="true" if mode == "full" else "false", HOST="127.0.0.1",
               PORT=str(port), API_SERVER_PORT=str(api_port), GATEWAY_WORKERS=str(workers),
               GATEWAY_TOKEN=token, WAIIDE_HUB_STATUS_PATH=str(base / "status.bin"),
               WAIIDE_COMMAND=shlex.join([sys.executable, str(FAKE_IDE), "--socket"]) + " {socket}")
    log = base / "stack.log"
    with _started([sys.executable, str(ROOT / "supervisor_main.py")], env, log) as proc:
        _wait_log(log, "WAIIDE Hub is ready", proc)
        origin = f"http://127.0.0.1:{api_port}"
        for _ in range(4 * workers):  # spread over the workers (the kernel balances accept)
            _get(f"{origin}/echo", token)
            _get(f"{origin}/api/status")
            _get(f"{origin}/metrics", token)
        time.sleep(settle_s)
        children = psutil.Process(proc.pid).children()
        ide = next((c.pid for c in children if str(FAKE_IDE) in " ".join(c.cmdline())), None)
        return sample_tree(proc.pid, "supervisor", ide)


_JSP_CONFIG = """\
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = {port}
c.ServerApp.port_retries = 0
c.ServerApp.open_browser = False
c.ServerApp.allow_root = True
c.ServerApp.root_dir = {root!r}
c.IdentityProvider.token = {token!r}
c.ServerProxy.servers = {{"ide": {{"command": [], "unix_socket": {socket!r},
                                   "absolute_url": False}}}}
"""


def measure_jupyter(base: Path, settle_s: float) -> list[ProcMemory]:
    """A plain `jupyter server` with jupyter-server-proxy in front of the same stand-in IDE."""
    port, token = _free_port(), "memory-bench-token"
    env = _isolated_env(base)
    sock = base / "run" / "ide.sock"
    config = base / "jupyter_server_config.py"
    config.write_text(_JSP_CONFIG.format(port=port, root=str(base / "home"), token=token,
                                         socket=str(sock)))
    env.update(JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_DATA_DIR=str(base / "data"),
               JUPYTER_RUNTIME_DIR=str(base / "run"), JUPYTER_PLATFORM_DIRS="1")
    with _started([sys.executable, str(FAKE_IDE), "--socket", str(sock)], env,
                  base / "ide.log"), \
            _started([sys.executable, "-m", "jupyter_server", f"--config={config}"], env,
                     base / "jupyter.log") as proc:
        _wait_log(base / "jupyter.log", "is running at", proc)
        for _ in range(8):
            _get(f"http://127.0.0.1:{port}/ide/echo", token)
            _get(f"http://127.0.0.1:{port}/api/status", token)
        time.sleep(settle_s)
        return sample_tree(proc.pid, "jupyter server")


def _table(title: str, procs: list[ProcMemory]) -> list[str]:
    lines = [title, f"  {'process':<44} {'pid':>7} {'PSS MiB':>8} {'RSS MiB':>8} {'USS MiB':>8}"]
    for p in sorted(procs, key=lambda p: (not p.in_budget, p.role, p.pid)):
        lines.append(f"  {p.role:<44} {p.pid:>7} {p.pss / MIB:>8.1f} {p.rss / MIB:>8.1f} "
                     f"{p.uss / MIB:>8.1f}")
    counted = [p for p in procs if p.in_budget]
    lines.append(f"  {'total (without the IDE)':<44} {'':>7} "
                 f"{sum(p.pss for p in counted) / MIB:>8.1f} "
                 f"{sum(p.rss for p in counted) / MIB:>8.1f} "
                 f"{sum(p.uss for p in counted) / MIB:>8.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("lightweight", "full"), default="lightweight")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle-s", type=float, default=10.0,
                        help="idle seconds before the sample (default 10)")
    parser.add_argument("--no-jupyter", action="store_true", help="skip the comparison")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="waiide-mem-") as tmp:
        base = Path(tmp)
        stack = measure_stack(base / "stack", args.mode, args.workers, args.settle_s)
        jupyter = [] if args.no_jupyter else measure_jupyter(base / "jupyter", args.settle_s)
    total = sum(p.pss for p in stack if p.in_budget) / MIB
    lines = _table(f"WAIIDE Hub, {args.mode} mode, {args.workers} gateway worker(s):", stack)
    if jupyter:
        lines += ["", *_table("Plain Jupyter server + jupyter-server-proxy:", jupyter)]
    if args.mode == "lightweight" and args.workers == 2:
        verdict = "within" if total <= BUDGET_MIB else "OVER"
        lines += ["", f"budget: {total:.1f} MiB PSS without the IDE, {verdict} {BUDGET_MIB:g} MiB"]
    else:  # the budget is set for lightweight mode with 2 workers only
        lines += ["", (f"total: {total:.1f} MiB PSS without the IDE (the {BUDGET_MIB:g} MiB "
                       "budget is for lightweight mode with 2 workers)")]
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({
            "mode": args.mode, "workers": args.workers, "budget_mib": BUDGET_MIB,
            "total_pss_mib": round(total, 1),
            "stack": [asdict(p) for p in stack], "jupyter": [asdict(p) for p in jupyter]},
            indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

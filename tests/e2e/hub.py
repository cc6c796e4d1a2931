"""A real JupyterHub with the real configurable-http-proxy on loopback, for the end-to-end tests.

`start_hub()` runs `jupyterhub -f examples/jupyterhub_config_local.py` (the local-process hub
config the project ships) in a temp dir with free ports, a service token for the admin API, and
a stand-in WAIIDE (tests/resources/fake_waiide.py) unless told `waiide_command=None` (the
supervisor's default: the real code-server); `HubProcess.wait_healthy()` waits for
`/hub/health` to answer 200 (CHP answers 404 until the hub has added its route, so an open port
is not enough).
`HubProcess.stop()` is SIGTERM to the hub (which stops the servers and CHP it started,
`cleanup_servers`/`cleanup_proxy`), a deadline, then SIGKILL of whatever is left by pid and
process group; it returns the pids that had to be killed so the fixture can fail on them.

`HubApi` is the admin REST client (urllib, blocking: fixtures are synchronous; async tests call it
through `asyncio.to_thread` when something else must keep running). `login()` is the browser's
login-form flow with aiohttp and a cookie jar.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from tests.procs import PYTHON, RESOURCES, ROOT, free_port

HUB_CONFIG = ROOT / "examples" / "jupyterhub_config_local.py"
JUPYTERHUB = Path(PYTHON).parent / "jupyterhub"
HUB_HOME = Path(os.environ.get("WAIIDE_HUB_HOME", "~/.cache/waiide-hub")).expanduser()
CHP = HUB_HOME / "npm-tools" / "node_modules" / ".bin" / "configurable-http-proxy"
# Each user's default server, as the README and examples/ tell users (/user/{name}/WAIIDE/).
SERVER_NAME = ""


def server_api_path(user: str, server: str = SERVER_NAME) -> str:
    """The REST path of a user's server: /users/{user}/server, or .../servers/{name}."""
    return f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"


def server_prefix(user: str, server: str = SERVER_NAME) -> str:
    """The URL prefix JupyterHub gives the server: /user/{user}/[{server}/]."""
    return f"/user/{user}/{server}/" if server else f"/user/{user}/"
STRIPPED_ENV_PREFIXES = ("JUPYTERHUB_", "JPY_", "JH_", "PYTEST_", "WAIIDE_", "GATEWAY_",
                         "MONITOR_", "SUPERVISOR_")
USERS = ("alice", "bob")
# Browsers ask for pages; the lightweight gateway only starts the OAuth login for them.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

HEALTH_TIMEOUT_S = 30.0
HUB_STOP_TIMEOUT_S = 20.0
SPAWN_TIMEOUT_S = 60.0
# The stand-in IDE the hub's servers run by default (echo JSON, /ws echo).
# On {socket}: the supervisor's private socket, as the real IDE listens by default.
FAKE_WAIIDE_COMMAND = shlex.join([PYTHON, str(RESOURCES / "fake_waiide.py"), "--socket"]) + " {socket}"


class HubError(AssertionError):
    """The hub or a server did not do what the test waited for (with the hub's log tail)."""


@dataclass(frozen=True)
class Ports:
    public: int
    hub: int
    proxy_api: int


def _hub_env(run_dir: Path, ports: Ports, token: str, mode: str, activity_interval_s: int,
             waiide_command: str | None, extra: Mapping[str, str]) -> dict[str, str]:
    # The config passes WAIIDE_*/GATEWAY_*/MONITOR_*/SUPERVISOR_* on to every server: only ours.
    env = {key: value for key, value in os.environ.items()
           if key == "WAIIDE_HUB_HOME" or not key.startswith(STRIPPED_ENV_PREFIXES)}
    env.update({
        "JH_RUN_DIR": str(run_dir),
        "JH_PORT": str(ports.public),
        "JH_HUB_PORT": str(ports.hub),
        "JH_PROXY_API_PORT": str(ports.proxy_api),
        "JH_CHP": str(CHP),
        "JH_USERS": ",".join(USERS),
        "JH_TEST_TOKEN": token,
        "JH_USE_ALL_COMPONENTS": "true" if mode == "full" else "false",
        "JH_ACTIVITY_INTERVAL": str(activity_interval_s),
        # The hub also raises last_activity from CHP's per-route activity every this many
        # seconds. Traffic through the hub is real use, but the keepalive test needs a window
        # in which only the gateway can move last_activity, so the hub never polls CHP here.
        "JH_LAST_ACTIVITY_INTERVAL": "3600",
        "JH_START_TIMEOUT": "60",
        "JH_HTTP_TIMEOUT": "60",
        # Passed on to every server by the config (WAIIDE_*, GATEWAY_*, MONITOR_* prefixes).
        "WAIIDE_READY_PATH": "/healthz",
        "WAIIDE_READY_TIMEOUT": "30",
        "GATEWAY_WORKERS": "2",
        "MONITOR_INTERVAL": "2",  # MONITOR_PROBE_TIMEOUT (2) may not exceed it
        "SUPERVISOR_STOP_TIMEOUT": "5",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    if waiide_command is not None:  # None: no WAIIDE_COMMAND, the supervisor's code-server
        env["WAIIDE_COMMAND"] = waiide_command
    env.update(extra)
    return env


def pid_alive(pid: int, create_time: float | None = None) -> bool:
    """True while `pid` runs (not a zombie) and is the same process (same start time)."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.01:
            return False
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


@dataclass(frozen=True)
class ProcInfo:
    """A process seen while running, identified by pid and start time (pids get reused)."""

    pid: int
    create_time: float
    cmdline: str

    def alive(self) -> bool:
        return pid_alive(self.pid, self.create_time)


def process_tree(pid: int) -> list[ProcInfo]:
    """`pid` and all its descendants, now."""
    root = psutil.Process(pid)
    infos = []
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            infos.append(ProcInfo(proc.pid, proc.create_time(), " ".join(proc.cmdline())[:200]))
    return infos


def kill_leftovers(procs: Iterable[ProcInfo]) -> list[ProcInfo]:
    """SIGKILL (group, then pid) every process of `procs` still alive; the ones that were."""
    alive = [p for p in procs if p.alive()]
    for info in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(info.pid) == info.pid:
                os.killpg(info.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGKILL)
    return alive


def wait_gone(procs: Iterable[ProcInfo], timeout_s: float) -> list[ProcInfo]:
    """Poll until none of `procs` is alive; the survivors at the deadline."""
    procs = list(procs)
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [p for p in procs if p.alive()]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def parse_time(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp) if stamp else None  # 3.11 reads a trailing "Z"


class HubApi:
    """The hub's REST API with the e2e service's token (admin:users, admin:servers, tokens)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self._token = token

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None,
                timeout_s: float = 15.0) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}/hub/api{path}", data=data, method=method,
                                     headers={"Authorization": f"token {self._token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                status, raw = int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        return status, (json.loads(raw) if raw.strip() else None)

    def user(self, name: str) -> dict[str, Any]:
        status, model = self.request("GET", f"/users/{name}")
        assert status == 200, (status, model)
        return dict(model)

    def server(self, user: str, server: str = SERVER_NAME) -> dict[str, Any] | None:
        model = self.user(user)["servers"].get(server)
        return dict(model) if model is not None else None

    def last_activity(self, user: str = "alice", server: str = SERVER_NAME) -> datetime:
        model = self.server(user, server)
        assert model is not None, f"{user}/{server} is not running"
        stamp = parse_time(model["last_activity"])
        assert stamp is not None
        return stamp

    def new_token(self, user: str) -> str:
        status, reply = self.request("POST", f"/users/{user}/tokens",
                                     {"note": "e2e", "expires_in": 3600})
        assert status == 201, (status, reply)
        return str(reply["token"])


@dataclass
class HubProcess:
    """A running hub: where it listens, its admin API, its log, and what it started."""

    mode: str
    run_dir: Path
    ports: Ports
    token: str
    proc: subprocess.Popen[bytes]
    log: Path
    activity_interval_s: int
    seen: list[ProcInfo] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.public}"

    @property
    def api(self) -> HubApi:
        return HubApi(self.url, self.token)

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def fail(self, message: str) -> HubError:
        return HubError(f"{message}\n--- hub log tail ({self.log}) ---\n{self.log_tail()}")

    def remember(self, procs: Iterable[ProcInfo]) -> None:
        """Processes the hub's teardown must find gone."""
        known = {(p.pid, p.create_time) for p in self.seen}
        self.seen.extend(p for p in procs if (p.pid, p.create_time) not in known)

    def proxy_proc(self) -> ProcInfo | None:
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            pid = int((self.run_dir / "proxy.pid").read_text().strip())
            proc = psutil.Process(pid)
            return ProcInfo(pid, proc.create_time(), " ".join(proc.cmdline())[:200])
        return None

    def wait_healthy(self, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self.fail(f"jupyterhub exited with {self.proc.returncode} while starting")
            try:
                with urllib.request.urlopen(f"{self.url}/hub/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last = resp.status
            except urllib.error.HTTPError as exc:
                last = exc.code
            except OSError as exc:
                last = exc
            time.sleep(0.2)
        raise self.fail(f"/hub/health did not answer 200 within {timeout_s}s (last: {last})")

    def stop(self) -> list[ProcInfo]:
        """SIGTERM the hub, wait, SIGKILL its group; then kill and return any process left."""
        proxy = self.proxy_proc()
        if proxy is not None:
            self.remember([proxy])
        if self.proc.poll() is None:
            # CHP and every server are the hub's children (each in a session of its own): also
            # those of a spawn that failed before a test recorded them.
            with contextlib.suppress(psutil.NoSuchProcess):
                self.remember(p for p in process_tree(self.proc.pid) if p.pid != self.proc.pid)
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=HUB_STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the hub's own group (session leader)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        # CHP and the servers run in sessions of their own: a hub that did not stop them
        # leaves them behind, which is a failure, but they must not outlive the test run.
        survivors = wait_gone(self.seen, 5.0)
        return kill_leftovers(survivors)


def start_hub(run_dir: Path, mode: str, *, activity_interval_s: int = 1,
              waiide_command: str | None = FAKE_WAIIDE_COMMAND,
              env: Mapping[str, str] | None = None) -> HubProcess:
    """Start the hub in `run_dir` (fresh state); `HubProcess.wait_healthy()` waits for it.

    Args:
        waiide_command: the servers' WAIIDE_COMMAND; None leaves it unset, so the supervisor
            runs its default IDE (the code-server scripts/setup.sh installs).
        env: more of the hub's environment, over the defaults above (the config passes the
            WAIIDE_*/GATEWAY_*/MONITOR_*/SUPERVISOR_* ones on to every server).
    """
    if not os.access(CHP, os.X_OK):
        raise HubError(f"configurable-http-proxy is not at {CHP}: run `bash scripts/setup.sh test`"
                       " (or set WAIIDE_HUB_HOME to where it installed it)")
    ports = Ports(free_port(), free_port(), free_port())
    token = secrets.token_hex(24)
    hub_env = _hub_env(run_dir, ports, token, mode, activity_interval_s, waiide_command,
                       env or {})
    log = run_dir / "jupyterhub.log"
    out = open(log, "ab")  # noqa: SIM115 - closed right after Popen; the child keeps its fd
    try:
        proc = subprocess.Popen([str(JUPYTERHUB), "-f", str(HUB_CONFIG)], env=hub_env,
                                cwd=run_dir, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        out.close()
    return HubProcess(mode, run_dir, ports, token, proc, log, activity_interval_s)


async def login(session: aiohttp.ClientSession, hub_url: str, user: str,
                next_url: str) -> aiohttp.ClientResponse:
    """The browser's flow: GET /hub/login (the _xsrf cookie), POST the form, follow redirects.

    Returns the final response (its body not yet read); `session` keeps the cookies.
    """
    headers = {"Accept": BROWSER_ACCEPT}
    async with session.get(f"{hub_url}/hub/login", headers=headers) as resp:
        assert resp.status == 200, resp.status
        await resp.read()
    xsrf = next((c.value for c in session.cookie_jar if c.key == "_xsrf"), None)
    assert xsrf, "GET /hub/login set no _xsrf cookie"
    return await session.post(f"{hub_url}/hub/login", params={"next": next_url},
                              data={"username": user, "password": "any", "_xsrf": xsrf},
                              headers=headers, allow_redirects=True, max_redirects=10)


def browser_session() -> aiohttp.ClientSession:
    # unsafe=True: aiohttp's jar ignores cookies of IP-address hosts (127.0.0.1) otherwise.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 timeout=aiohttp.ClientTimeout(total=30))

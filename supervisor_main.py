"""Run WAIIDE Hub: the WAIIDE server, Jupyter (full mode), the gateway and the monitor.

Usage: python supervisor_main.py [JUPYTER-SERVER-ARGS...]

Arguments are passed on to jupyterhub-singleuser / the Jupyter server, because JupyterHub appends
`Spawner.args` (for example `--allow-root`) to whatever command it spawns. SIGTERM or SIGINT
stops every child in reverse start order; a second one kills them at once; SIGHUP restarts them.

Environment (blank counts as unset; a bad value stops the start, naming it):

  USE_ALL_COMPONENTS   true     false: lightweight mode, no Jupyter; the gateway also serves PORT
  HOST                 0.0.0.0  listen address of PORT and API_SERVER_PORT (hub: service URL's)
  PORT                 8090     Jupyter (full) or the gateway's hub-facing port (lightweight)
                                (under a hub: the port of JUPYTERHUB_SERVICE_URL)
  API_SERVER_PORT      8091     the gateway
  DEBUG                false    debug logs here; DEBUG=true to every child (+ Jupyter --debug)
  WAIIDE_COMMAND       code-server from scripts/setup.sh; shell-like, {port} {host} {socket}
  WAIIDE_HUB_HOME      ~/.cache/waiide-hub   where setup.sh put code-server (default command)
  WAIIDE_WORKSPACE     $HOME    the folder the default code-server opens; Jupyter's root_dir
  WAIIDE_SOCKET        private  $XDG_RUNTIME_DIR/waiide-hub-<API_SERVER_PORT>/waiide.sock, else
                                /tmp/waiide-hub-<uid>-<API_SERVER_PORT>/waiide.sock (0700 dir)
  WAIIDE_HOST          unset    set (or WAIIDE_PORT, or a WAIIDE_COMMAND without {socket}):
  WAIIDE_PORT          unset    TCP 127.0.0.1:8080, reachable by EVERY local process (warned)
  WAIIDE_MEMORY_LIMIT  cgroup   bytes (2G, 512Mi) the IDE may use: Node heap cap, alert rule
  WAIIDE_MACHINE_SETTINGS  built-in  JSON file of managed IDE settings, or "none"
  WAIIDE_USER_DATA_DIR $XDG_DATA_HOME/code-server   the default code-server's --user-data-dir
  WAIIDE_READY_PATH    /healthz  any HTTP answer there means the IDE is ready
  WAIIDE_READY_TIMEOUT 120      seconds
  SUPERVISOR_READY_TIMEOUT    60   seconds for Jupyter ({prefix}api) and the gateway (/api/healthz)
  SUPERVISOR_STOP_TIMEOUT     5    seconds between SIGTERM and SIGKILL, per child
  SUPERVISOR_BACKOFF_INITIAL  1    seconds before the first restart; doubles per quick exit
  SUPERVISOR_BACKOFF_MAX      30   seconds; also the restart period of a flapping child
  SUPERVISOR_STABLE_UPTIME    30   seconds of uptime that reset the backoff and the flap count
  SUPERVISOR_FLAP_RESTARTS    5    exits within SUPERVISOR_FLAP_WINDOW that mean flapping
  SUPERVISOR_FLAP_WINDOW      60   seconds
  SUPERVISOR_PROBE_INTERVAL   5    seconds between liveness probes of the gateway and WAIIDE
  SUPERVISOR_PROBE_TIMEOUT    2    seconds per probe (connect, read)
  SUPERVISOR_HANG_PROBES      3    failed probes in a row that restart a live gateway or WAIIDE
  WAIIDE_IDLE_TIMEOUT  0        seconds without real use after which the server stops itself
                                (exit 0); 0 = off
  WAIIDE_IDLE_WARNING  300      seconds before that, the IDE shows "Keep working"
  WAIIDE_IDLE_BUSY_COUNTS true  a running terminal command, task or debug session holds it
  SUPERVISOR_GATEWAY_COMMAND  <python> -m gateway   (shell-like; tests use stand-ins)
  SUPERVISOR_MONITOR_COMMAND  <python> -m monitor
  GATEWAY_TOKEN        generated unless GATEWAY_AUTH=none; printed in the banner standalone;
                       a generated one is kept in $XDG_DATA_HOME/waiide-hub/ (delete to rotate)
  JUPYTER_TOKEN        generated and kept likewise (standalone full mode); printed in the banner
  PROMETHEUS_MULTIPROC_DIR    <run dir>/prometheus; its *.db files are wiped at start and exit
  WAIIDE_HUB_STATUS_PATH      unset: the monitor derives it; set: passed on, removed at exit
  JUPYTERHUB_API_TOKEN set: under a hub (jupyterhub-singleuser instead of jupyter server)
  JUPYTERHUB_SERVICE_URL / JUPYTERHUB_SERVICE_PREFIX   from the hub

Before starting anything: an exclusive lock per instance (uid + API_SERVER_PORT, under
$XDG_RUNTIME_DIR or the temp directory; a dead previous supervisor's leftover children are
killed), PORT / API_SERVER_PORT / WAIIDE_PORT checked free, and each child's settings checked
(`python -m gateway --check-config`, `python -m monitor --check-config`).

Exit codes: 0 clean stop, 1 stop forced by a second signal, 2 bad configuration (a bad value of
any component, a taken port; also a gateway or monitor that exits 2 later, never restarted),
3 a component could not be started or did not become ready, or another supervisor runs this
instance.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from common.errors import ConfigError
from common.exits import ExitCode
from supervisor.app import run
from supervisor.config import SupervisorConfig

LOG_FORMAT = "%(asctime)s [supervisor] %(levelname)s %(name)s: %(message)s"


def configure_logging(debug: bool) -> None:
    """The supervisor's own log lines go to stderr; children's output is relayed separately."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)


def main(argv: Sequence[str] | None = None) -> None:
    """Read the configuration, run the supervisor, exit with its code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(__doc__)
        sys.exit(ExitCode.OK)
    try:
        config = SupervisorConfig.from_env(os.environ)
    except ConfigError as exc:
        print(f"waiide-hub: {exc}", file=sys.stderr)
        sys.exit(ExitCode.CONFIG_ERROR)
    configure_logging(config.debug)
    sys.exit(run(config, args))


if __name__ == "__main__":
    main()

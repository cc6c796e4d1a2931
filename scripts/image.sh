#!/usr/bin/env bash
# Builds the image with podman/buildah on a machine without Docker (the tests use it; a laptop
# with Docker just runs `docker build .`). Idempotent; quick when done.
#
#   scripts/image.sh setup           podman, buildah and friends (apt), the containers.conf this
#                                    machine needs, and the base image (a local stand-in when
#                                    python:3.11-slim-bookworm cannot be pulled)
#   scripts/image.sh build [TAG]     setup, then build TAG (default localhost/waiide-hub:test);
#                                    skipped when an image built from the same inputs exists
#   scripts/image.sh inputs-hash     the hash the build is labelled with
#   scripts/image.sh conf            the path to export as CONTAINERS_CONF for podman
#   scripts/image.sh hub-venv        a venv for a hub that spawns the image (the tests'):
#                                    JupyterHub as in the image (JUPYTERHUB_VERSION) and
#                                    DockerSpawner; `hub-python` prints its interpreter
#
# Why each step is needed here: /work/shared/reference/container-build.md (no Docker Hub, no
# CAP_SYS_RESOURCE for the default ulimits, hybrid cgroups, registries behind TLS inspection).
# Nothing in /etc is changed: podman reads CONTAINERS_CONF, set by this script and the tests.
#
# Environment: WAIIDE_HUB_HOME (default ~/.cache/waiide-hub) holds the containers.conf, the
# npmrc and the debootstrap work dir; JUPYTERHUB_VERSION (optional) is passed as the build arg;
# IMAGE_BUILD_LOG (optional) gets the build output.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HUB_HOME="${WAIIDE_HUB_HOME:-$HOME/.cache/waiide-hub}"
CONF_DIR="$HUB_HOME/containers"
CONF="$CONF_DIR/containers.conf"
NPMRC="$CONF_DIR/npmrc"
BASE_IMAGE="python:3.11-slim-bookworm"
BASE_REFS=("localhost/$BASE_IMAGE" "docker.io/library/$BASE_IMAGE")
DEFAULT_TAG="localhost/waiide-hub:test"
# The Dockerfile's default JupyterHub (its ARG), unless JUPYTERHUB_VERSION says otherwise.
HUB_VERSION="${JUPYTERHUB_VERSION:-$(sed -n 's/^ARG JUPYTERHUB_VERSION=//p' "$ROOT/Dockerfile")}"
DOCKERSPAWNER_VERSION="14.0.0"
HUB_VENV="$HUB_HOME/hub-$HUB_VERSION-dockerspawner-$DOCKERSPAWNER_VERSION"
INPUTS_LABEL="org.waiide-hub.inputs"
HOST_CA=/etc/ssl/certs/ca-certificates.crt
# What the Dockerfile copies into the image: a change to any of these means a new build.
INPUTS=(Dockerfile .dockerignore pyproject.toml supervisor_main.py common ide-extension gateway monitor
        supervisor scripts/setup.sh scripts/entrypoint-jupyterhub.sh scripts/image-constraints.txt
        scripts/image-slim.sh scripts/test_api.py)
PACKAGES=(podman buildah runc fuse-overlayfs slirp4netns uidmap debootstrap
          containernetworking-plugins golang-github-containers-common catatonit iptables)

log() { printf '[image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

install_packages() {
    local missing=() pkg sudo=""
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "apt: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

write_conf() {
    mkdir -p "$CONF_DIR"
    # runc + cgroupfs: crun refuses hybrid cgroups; explicit ulimits: the distribution's defaults
    # need CAP_SYS_RESOURCE, which this root lacks; file events: there is no systemd journal.
    cat > "$CONF.new" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    mv "$CONF.new" "$CONF"
    # npm inside the build trusts the host's bundle only through an npmrc (Node ignores the
    # system store); mounted read-only, never part of the image.
    printf 'cafile=%s\n' "$HOST_CA" > "$NPMRC"
}

base_present() {
    podman image exists "docker.io/library/$BASE_IMAGE"
}

# A stand-in for python:3.11-slim-bookworm: Debian bookworm minbase with Debian's Python 3.11,
# brought up to date from the mirrors apt already uses.
make_base() {
    local work="$CONF_DIR/base-rootfs" mirror
    local uris security
    uris="$( { grep -rhE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        || true; } | grep -oE 'https?://[^ ]+' || true)"
    mirror="$(grep -E '/debian/?$' <<<"$uris" | head -n1 || true)"
    security="$(grep -E '/debian-security/?$' <<<"$uris" | head -n1 || true)"
    [ -n "$mirror" ] || die "no Debian mirror (.../debian) found in /etc/apt/sources.list*"
    log "base: debootstrap bookworm from $mirror (about a minute)"
    rm -rf "$work"
    mkdir -p "$work"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$work" "$mirror" >"$CONF_DIR/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $CONF_DIR/debootstrap.log"
    # The suites the official image follows (updates and security), then upgrade in the rootfs.
    {
        echo "deb $mirror bookworm main"
        echo "deb $mirror bookworm-updates main"
        [ -z "$security" ] || echo "deb $security bookworm-security main"
    } > "$work/etc/apt/sources.list"
    cp /etc/resolv.conf "$work/etc/resolv.conf"
    mount -t proc proc "$work/proc"
    local rc=0
    chroot "$work" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get upgrade -y -qq && apt-get clean && rm -rf /var/lib/apt/lists/*' \
        >>"$CONF_DIR/debootstrap.log" 2>&1 || rc=$?
    umount "$work/proc"
    [ "$rc" -eq 0 ] || die "upgrading the base failed; see $CONF_DIR/debootstrap.log"
    : > "$work/etc/resolv.conf"
    tar --numeric-owner -C "$work" -c . | podman import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' - localhost/debian:bookworm >/dev/null
    local ref
    for ref in "${BASE_REFS[@]}"; do podman tag localhost/debian:bookworm "$ref"; done
    rm -rf "$work"
    log "base: localhost/debian:bookworm tagged as $BASE_IMAGE"
}

setup() {
    install_packages
    write_conf
    export CONTAINERS_CONF="$CONF"
    podman info >/dev/null 2>&1 || die "podman cannot run here: $(podman info 2>&1 | tail -n 3)"
    if ! base_present; then
        log "base: $BASE_IMAGE is not here and Docker Hub is not used; making a stand-in"
        make_base
    fi
}

inputs_hash() {
    (
        cd "$ROOT"
        find "${INPUTS[@]}" -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 \
            | LC_ALL=C sort -z | xargs -0 sha256sum
        echo "JUPYTERHUB_VERSION=${JUPYTERHUB_VERSION:-default}"
    ) | sha256sum | cut -c1-16
}

build() {
    local tag="${1:-$DEFAULT_TAG}" hash existing
    setup
    hash="$(inputs_hash)"
    existing="$(podman images -q --filter "label=$INPUTS_LABEL=$hash" | head -n1)"
    if [ -n "$existing" ]; then
        podman tag "$existing" "$tag"
        log "build: $tag is image $existing, already built from these inputs ($hash)"
        return 0
    fi
    local args=(--format docker --pull-never --isolation oci --network host
                --label "$INPUTS_LABEL=$hash"
                -v "$HOST_CA:$HOST_CA:ro" -v "$NPMRC:/etc/npmrc:ro" -t "$tag")
    [ -z "${JUPYTERHUB_VERSION:-}" ] || args+=(--build-arg "JUPYTERHUB_VERSION=$JUPYTERHUB_VERSION")
    log "build: $tag from $ROOT (inputs $hash; 5-8 minutes cold)"
    local started=$SECONDS
    if [ -n "${IMAGE_BUILD_LOG:-}" ]; then
        buildah bud "${args[@]}" "$ROOT" >"$IMAGE_BUILD_LOG" 2>&1 \
            || die "build failed; see $IMAGE_BUILD_LOG"
    else
        buildah bud "${args[@]}" "$ROOT"
    fi
    log "build: done in $((SECONDS - started)) s"
    # Superseded builds of this project (and their dangling stages) are dropped.
    podman image prune -f >/dev/null 2>&1 || true
}

hub_venv() {
    local want="jupyterhub==$HUB_VERSION dockerspawner==$DOCKERSPAWNER_VERSION"
    [ -f "$HUB_VENV/.stamp" ] && [ "$(cat "$HUB_VENV/.stamp")" = "$want" ] && return 0
    log "hub venv: $want into $HUB_VENV"
    [ -x "$HUB_VENV/bin/python" ] || python3 -m venv "$HUB_VENV"
    # shellcheck disable=SC2086  # two requirement specifiers
    "$HUB_VENV/bin/python" -m pip install -q --disable-pip-version-check $want
    echo "$want" > "$HUB_VENV/.stamp"
}

case "${1:-}" in
    setup) setup ;;
    hub-venv) hub_venv ;;
    hub-python) echo "$HUB_VENV/bin/python" ;;
    build) build "${2:-}" ;;
    inputs-hash) inputs_hash ;;
    conf) echo "$CONF" ;;
    *)
        echo "usage: $0 setup|build [TAG]|inputs-hash|conf|hub-venv|hub-python" >&2
        exit 2
        ;;
esac

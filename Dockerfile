# WAIIDE Hub: the single-user server image a JupyterHub spawner (DockerSpawner, KubeSpawner)
# starts for each user, or `docker run` starts on its own.
#
#   docker build -t waiide-hub:0.1.0 .
#   docker run --rm -p 8090:8090 -p 8091:8091 waiide-hub:0.1.0       # standalone; prints the URLs
#
# One install path: the project and the IDE (code-server with its own Node 24) are installed by
# `scripts/setup.sh run`, the same script CI and `make run` use. Debian's nodejs/npm (Node 18,
# npm 9 on bookworm) are only there to bootstrap npm: setup.sh installs Node 24 from the npm
# package node@24, which is what code-server runs on.
# Examples of hub configurations: examples/ (not copied into the image).
FROM python:3.11-slim-bookworm

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ARG NB_USER=jovyan
ARG NB_UID=1000
ARG NB_GID=100

# Where the repo and its venv (.venv, made by setup.sh) live, and where setup.sh puts code-server
# and Node 24 (WAIIDE_HUB_HOME): outside the user's home, so a volume mounted on the home (as
# DockerSpawner and z2jh do) does not hide them.
ENV APP_DIR=/srv/waiide-hub \
    WAIIDE_HUB_HOME=/opt/waiide-hub \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# tini: PID 1 (reaps zombies, forwards signals). nodejs/npm: bootstrap npm (see above).
# g++, make, libkrb5-dev: code-server's native modules (node-gyp; the `kerberos` module needs
# gssapi/gssapi.h). git, openssh-client, less:
# what people expect from a terminal in the IDE. Debian versions are not pinned: bookworm's
# archive drops superseded versions on security updates, so a pin would break the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        tini nodejs npm g++ make libkrb5-dev git openssh-client less ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# The conventional Jupyter user (docker-stacks, z2jh default uid 1000 and fsGid 100).
RUN useradd --create-home --shell /bin/bash --uid "${NB_UID}" --gid "${NB_GID}" "${NB_USER}" \
    && install -d -o "${NB_UID}" -g "${NB_GID}" "${APP_DIR}" "${WAIIDE_HUB_HOME}"

WORKDIR ${APP_DIR}
COPY --chown=${NB_UID}:${NB_GID} . ${APP_DIR}

USER ${NB_UID}
# Installs the venv at ${APP_DIR}/.venv and code-server under ${WAIIDE_HUB_HOME}, as the user
# who runs them; then drops the download caches from the layer. The venv stays off PATH: the
# entrypoint finds it, and the user's terminals keep the image's plain python3.
RUN bash scripts/setup.sh run \
    && rm -rf "${HOME}/.npm" "${HOME}/.cache/pip"

# The seed's settings and their defaults; a spawner's environment overrides them. Under a hub,
# PORT must be the spawner's port (c.DockerSpawner.port / c.KubeSpawner.port = 8090).
ENV USE_ALL_COMPONENTS=true \
    PORT=8090 \
    API_SERVER_PORT=8091 \
    HOST=0.0.0.0 \
    DEBUG=false

EXPOSE 8090 8091

# The gateway's /api/status is 200 only while WAIIDE is healthy (503 otherwise). Proxies from the
# environment are bypassed: this is a loopback request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/api/status' % os.environ.get('API_SERVER_PORT', '8091'), timeout=4)"]

# The user's files and the IDE's default workspace.
WORKDIR /home/${NB_USER}

# tini only in ENTRYPOINT, the WAIIDE entrypoint in CMD: spawners replace CMD with their `cmd`
# (DockerSpawner `cmd`, KubeSpawner/z2jh `singleuser.cmd` become the container's command/args)
# and append Spawner.args; an entrypoint script in ENTRYPOINT would receive their cmd as
# arguments instead. The script execs the supervisor, so tini's signals reach it directly.
ENTRYPOINT ["tini", "--"]
CMD ["/srv/waiide-hub/scripts/entrypoint-jupyterhub.sh"]

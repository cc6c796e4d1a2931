# WAIIDE Hub: the single-user server image a JupyterHub spawner (DockerSpawner, KubeSpawner)
# starts for each user, or `docker run` starts on its own.
#
#   docker build --build-arg JUPYTERHUB_VERSION=5.4.6 -t waiide-hub:0.1.0 .
#   docker run --rm -p 127.0.0.1:8090:8090 -p 127.0.0.1:8091:8091 waiide-hub:0.1.0  # standalone
#
# Two stages. The builder installs the project and the IDE (code-server with its own Node 24)
# with `scripts/setup.sh run`, the one install path CI and `make run` use; compilers and headers
# for code-server's native modules live only there. The runtime stage gets the installed trees
# (same paths, so the venv and code-server's wrapper stay valid) on a clean base.
# Without Docker (podman/buildah): scripts/image.sh build.
# Examples of hub configurations: examples/ (not copied into the image).

# JupyterHub inside the image must match the hub's version (same major.minor; the hub warns
# otherwise). The default is the 5.4 line that Zero to JupyterHub 4.3.x runs.
ARG JUPYTERHUB_VERSION=5.4.6

FROM python:3.11-slim-bookworm AS builder

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ARG JUPYTERHUB_VERSION
# true: keep the GitHub Copilot agent SDK's native runtime (113 MB; see scripts/image-slim.sh).
ARG KEEP_COPILOT_SDK=false
ENV APP_DIR=/srv/waiide-hub \
    WAIIDE_HUB_HOME=/opt/waiide-hub \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# nodejs/npm: Debian's Node 18 only bootstraps npm (setup.sh installs Node 24 from the npm package
# node@24, which code-server runs on). g++, make, libkrb5-dev: code-server's native modules
# (node-gyp; `kerberos` needs gssapi/gssapi.h, see shared/reference/code-server-install.md).
# Debian versions are not pinned: bookworm's archive drops superseded versions on security
# updates, so a pin would break the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm g++ make libkrb5-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR ${APP_DIR}
COPY pyproject.toml supervisor_main.py ./
COPY common ./common
COPY gateway ./gateway
COPY monitor ./monitor
COPY supervisor ./supervisor
COPY ide-extension ./ide-extension
COPY scripts/setup.sh scripts/entrypoint-jupyterhub.sh scripts/image-constraints.txt \
     scripts/image-slim.sh scripts/test_api.py ./scripts/

# The venv at ${APP_DIR}/.venv (the pinned versions of scripts/image-constraints.txt plus the
# requested JupyterHub), code-server and Node 24 under ${WAIIDE_HUB_HOME}; then what the runtime
# never loads (scripts/image-slim.sh: other platforms' binaries, build by-products, caches).
# (pyproject.toml names README.md as the long description: a one-line stand-in does, so editing
# the README does not change the image.)
RUN printf 'WAIIDE Hub: see the repository README.\n' > README.md \
    && printf 'jupyterhub==%s\n' "${JUPYTERHUB_VERSION}" > /tmp/jupyterhub-constraint.txt \
    && PIP_CONSTRAINT="/tmp/jupyterhub-constraint.txt ${APP_DIR}/scripts/image-constraints.txt" \
        bash scripts/setup.sh run \
    && .venv/bin/python -c "import jupyterhub, sys; sys.exit(jupyterhub.__version__ != '${JUPYTERHUB_VERSION}')" \
    && KEEP_COPILOT_SDK="${KEEP_COPILOT_SDK}" bash scripts/image-slim.sh "${WAIIDE_HUB_HOME}" \
        "${APP_DIR}/.venv"

FROM python:3.11-slim-bookworm

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ARG JUPYTERHUB_VERSION
ARG NB_USER=jovyan
ARG NB_UID=1000
ARG NB_GID=100

LABEL org.opencontainers.image.title="WAIIDE Hub" \
      org.jupyter.jupyterhub.version="${JUPYTERHUB_VERSION}"

ENV APP_DIR=/srv/waiide-hub \
    WAIIDE_HUB_HOME=/opt/waiide-hub \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# tini: PID 1 (reaps zombies, forwards signals). libgssapi-krb5-2: the kerberos module's runtime
# library. git, openssh-client, less: what people expect from a terminal in the IDE. Their
# documentation, manual pages and message translations are left out (copyright files stay).
# hadolint ignore=DL3008
RUN printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' \
        > /etc/dpkg/dpkg.cfg.d/waiide-hub-slim \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        tini libgssapi-krb5-2 git openssh-client less ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# The conventional Jupyter user (docker-stacks, z2jh default uid 1000 and fsGid 100). The
# installed trees stay root-owned: the user runs them but cannot change them.
RUN useradd --create-home --shell /bin/bash --uid "${NB_UID}" --gid "${NB_GID}" "${NB_USER}"

COPY --from=builder /srv/waiide-hub /srv/waiide-hub
COPY --from=builder /opt/waiide-hub /opt/waiide-hub

USER ${NB_UID}

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

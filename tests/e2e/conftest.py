"""Fixtures for the end-to-end tests: a real hub per mode, and alice's default server on it.

`hub` is session-scoped and parametrized over the two modes (full: USE_ALL_COMPONENTS=true,
lightweight: false), so pytest runs every test of one mode against one hub, then starts the other
hub: the hub of a mode starts once, and its teardown (SIGTERM, then killing anything left) fails
the run if CHP or any process of any server had to be killed.

`server` spawns alice's (default) server through the REST API and records its process tree. Tests
in a module run in file order within a mode, so the test that stops the server comes last; the
fixture's teardown stops it too if it still runs, and checks the processes are gone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.hub import HubProcess, kill_leftovers, start_hub
from tests.e2e.servers import WaiideServer, spawn, stop

MODES = ("full", "lightweight")


@pytest.fixture(scope="session", params=MODES)
def hub(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    run_dir = tmp_path_factory.mktemp(f"hub-{request.param}")
    hub = start_hub(run_dir, request.param)
    try:
        hub.wait_healthy()
        yield hub
    finally:
        leftovers = hub.stop()
    assert not leftovers, hub.fail(
        f"processes survived the hub's SIGTERM and had to be killed: {leftovers}")
    assert hub.proc.returncode == 0, hub.fail(f"jupyterhub exited with {hub.proc.returncode}")


@pytest.fixture(scope="session")
def tokens(hub: HubProcess, server: WaiideServer) -> dict[str, str]:
    """API tokens of alice and bob, issued by the hub (POST /users/{name}/tokens)."""
    return {user: hub.api.new_token(user) for user in ("alice", "bob")}


@pytest.fixture(scope="session")
def server(hub: HubProcess) -> Iterator[WaiideServer]:
    running = spawn(hub)
    yield running
    if hub.api.server(running.user) is not None:
        _, alive = stop(running)
        killed = kill_leftovers(alive)
        assert not killed, hub.fail(f"processes outlived the stop of the server: {killed}")

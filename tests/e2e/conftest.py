"""Fixtures for the end-to-end tests: a real hub per mode, and alice's default server on it.

`hub` is session-scoped and parametrized over the two modes (full: USE_ALL_COMPONENTS=true,
lightweight: false), so pytest runs every test of one mode against one hub, then starts the other
hub: the hub of a mode starts once, and its teardown (SIGTERM, then killing anything left) fails
the run if CHP or any process of any server had to be killed.

`server` hands each test alice's running default server: the one of the mode's hub if it still
runs, or a new one spawned through the REST API (a test that stops the server does not leave the
next test, in any order, without one). So every test passes alone and in any order, and the
server is spawned once per mode when they run in file order. At the end of the session the
server still running is stopped, and its processes must be gone.
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
def tokens(hub: HubProcess) -> dict[str, str]:
    """API tokens of alice and bob, issued by the hub (POST /users/{name}/tokens)."""
    return {user: hub.api.new_token(user) for user in ("alice", "bob")}


class ServerSlot:
    """alice's server on one hub: spawned when a test needs it and none runs."""

    def __init__(self, hub: HubProcess) -> None:
        self.hub = hub
        self.current: WaiideServer | None = None

    def running(self) -> WaiideServer:
        if self.current is None or self.hub.api.server(self.current.user) is None:
            self.current = spawn(self.hub)
        return self.current

    def stop(self) -> None:
        """Stop the server if it still runs; fails if any of its processes outlived the stop."""
        running = self.current
        if running is None or self.hub.api.server(running.user) is None:
            return
        _, alive = stop(running)
        killed = kill_leftovers(alive)
        assert not killed, self.hub.fail(f"processes outlived the stop of the server: {killed}")


@pytest.fixture(scope="session")
def server_slot(hub: HubProcess) -> Iterator[ServerSlot]:
    slot = ServerSlot(hub)
    yield slot
    slot.stop()


@pytest.fixture
def server(server_slot: ServerSlot) -> WaiideServer:
    return server_slot.running()

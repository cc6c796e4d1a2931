"""supervisor.credentials: generated tokens are kept 0600 for the user and reused; given ones
and everything under a hub are left alone; an unsafe file is refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from supervisor.config import SupervisorConfig
from supervisor.credentials import CredentialError, CredentialStore, keep_generated_tokens


def load(tmp_path: Path, **env: str) -> SupervisorConfig:
    base = {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data")}
    return SupervisorConfig.from_env({**base, **env}, euid=1000, python="/py")


def test_generated_tokens_survive_a_restart(tmp_path: Path) -> None:
    first = keep_generated_tokens(load(tmp_path))
    second = keep_generated_tokens(load(tmp_path))  # a new start: fresh random tokens, replaced
    assert first.gateway_token and first.gateway_token == second.gateway_token
    assert first.jupyter_token and first.jupyter_token == second.jupyter_token
    assert (first.gateway_token_reused, second.gateway_token_reused) == (False, True)
    directory = tmp_path / "data" / "waiide-hub"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("gateway-token-8091", "jupyter-token-8091"):
        info = (directory / name).stat()
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
    assert (directory / "gateway-token-8091").read_text() == first.gateway_token + "\n"


def test_each_api_port_has_its_own_and_deleting_rotates(tmp_path: Path) -> None:
    a = keep_generated_tokens(load(tmp_path))
    b = keep_generated_tokens(load(tmp_path, API_SERVER_PORT="9191", PORT="9190"))
    assert a.gateway_token != b.gateway_token
    (tmp_path / "data" / "waiide-hub" / "gateway-token-8091").unlink()
    assert keep_generated_tokens(load(tmp_path)).gateway_token != a.gateway_token


def test_given_tokens_win_and_are_not_written(tmp_path: Path) -> None:
    config = keep_generated_tokens(load(tmp_path, GATEWAY_TOKEN="mine", JUPYTER_TOKEN="jt"))
    assert (config.gateway_token, config.jupyter_token) == ("mine", "jt")
    assert not (tmp_path / "data" / "waiide-hub").exists()


def test_under_a_hub_nothing_is_stored(tmp_path: Path) -> None:
    config = keep_generated_tokens(load(
        tmp_path, JUPYTERHUB_API_TOKEN="hub", JUPYTERHUB_SERVICE_URL="http://127.0.0.1:8888/"))
    assert config.gateway_token is None and config.jupyter_token is None
    assert not (tmp_path / "data" / "waiide-hub").exists()


def test_a_file_readable_by_others_is_made_private(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "store")
    store.keep("t", "secret")
    (tmp_path / "store" / "t").chmod(0o644)
    assert store.keep("t", "other") == ("secret", True)
    assert stat.S_IMODE((tmp_path / "store" / "t").stat().st_mode) == 0o600


def test_a_symlink_or_foreign_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir(mode=0o700)
    (tmp_path / "elsewhere").write_text("planted\n")
    (tmp_path / "store" / "t").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(CredentialError):
        CredentialStore(tmp_path / "store").keep("t", "new")
    (tmp_path / "store" / "t").unlink()
    (tmp_path / "store" / "t").write_text("planted\n")
    with pytest.raises(CredentialError, match="owned by uid"):
        CredentialStore(tmp_path / "store", uid=os.getuid() + 1).keep("t", "new")


def test_an_unwritable_store_leaves_the_run_token(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the directory should be")
    config = load(tmp_path)
    assert keep_generated_tokens(config).gateway_token == config.gateway_token

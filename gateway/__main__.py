"""`python -m gateway`: validate the configuration, print how to open the IDE, run the workers.

`python -m gateway --check-config` only validates the settings: exit 0 silently, or CONFIG_ERROR
with the message (the supervisor checks every child this way before starting any).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

from common.errors import ConfigError
from common.exits import ExitCode
from gateway.config import GatewayConfig
from gateway.metrics_dir import own_metrics_dir


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        config = GatewayConfig.from_env()
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return ExitCode.CONFIG_ERROR
    if "--check-config" in args:
        return ExitCode.OK
    # The metrics directory goes into the environment before prometheus_client is imported:
    # it picks its mode at import, and forked workers inherit the main process's import.
    with own_metrics_dir(config) as made:
        if made is not None:
            config = dataclasses.replace(config, multiproc_dir=str(made))
        from gateway.serve import run  # Sanic and the app only when serving (gateway.serve)

        return run(config)


if __name__ == "__main__":
    sys.exit(main())

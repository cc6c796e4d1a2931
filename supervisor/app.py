"""One supervisor run, wired together: run directory, children, components file, banner, signals."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from supervisor.banner import banner_lines
from supervisor.components import build_specs
from supervisor.config import Mode, SupervisorConfig
from supervisor.errors import ExitCode
from supervisor.process import ChildProcess
from supervisor.rundir import RunDir
from supervisor.runtime_file import RuntimeFile
from supervisor.status_file import ComponentsFile
from supervisor.supervisor import Supervisor

logger = logging.getLogger(__name__)


def run(config: SupervisorConfig, extra_args: Sequence[str] = ()) -> ExitCode:
    """Prepare, start, supervise until SIGTERM/SIGINT, stop, clean up; the exit code.

    Args:
        extra_args: the supervisor's own arguments, passed on to the Jupyter server (the hub
            appends `Spawner.args`, such as `--allow-root`, to any `Spawner.cmd`).
    """
    for note in config.notes:
        logger.warning("%s", note)
    if extra_args and config.mode is Mode.LIGHTWEIGHT:
        logger.warning("lightweight mode runs no Jupyter server; ignoring arguments %s",
                       " ".join(extra_args))
    try:
        run_dir = RunDir.create(config)
    except OSError as exc:
        logger.error("cannot prepare the run directories: %s", exc)
        return ExitCode.STARTUP_FAILURE
    runtime_file = RuntimeFile(config)
    try:
        specs = build_specs(config, run_dir.paths, extra_args)
        components = ComponentsFile(run_dir.paths.components_file)
        supervisor = Supervisor(specs, ChildProcess, on_change=components.write,
                                on_ready=lambda: _on_ready(config, runtime_file))
        logger.info("supervisor [%d] starting %s", os.getpid(),
                    ", ".join(spec.name for spec in specs))
        with supervisor.capture_signals():
            code = supervisor.run()
        logger.info("supervisor [%d] exiting with %d (%s)", os.getpid(), code, code.name)
        return code
    finally:
        runtime_file.remove()
        run_dir.cleanup()


def _on_ready(config: SupervisorConfig, runtime_file: RuntimeFile) -> None:
    runtime_file.publish()
    for line in banner_lines(config):
        logger.info("%s", line)

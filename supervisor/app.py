"""One supervisor run, wired together: run directory, children, components file, banner, signals."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from common.components_file import ChildEntry
from common.errors import ConfigError
from common.exits import ExitCode
from supervisor.banner import banner_lines
from supervisor.components import build_specs
from supervisor.config import Mode, SupervisorConfig
from supervisor.credentials import keep_generated_tokens
from supervisor.ide_setup import cleanup_ide, prepare_ide
from supervisor.idle import IdleWatch
from supervisor.instance_lock import InstanceBusy, InstanceLock, lock_path
from supervisor.ports import check_ports, planned_ports
from supervisor.preflight import check_settings
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
    lock = InstanceLock(lock_path(config.environ, config.api_port))
    try:
        killed = lock.acquire()
    except InstanceBusy as exc:
        logger.error("%s", exc)
        return ExitCode.STARTUP_FAILURE
    except OSError as exc:
        logger.error("cannot take the instance lock %s: %s", lock.path, exc)
        return ExitCode.STARTUP_FAILURE
    try:
        if killed:
            logger.warning("a previous supervisor of this instance died without stopping its "
                           "children; killed what was left of them: %s",
                           ", ".join(map(str, killed)))
        return _run_locked(config, extra_args, lock)
    finally:
        lock.release()


def _run_locked(config: SupervisorConfig, extra_args: Sequence[str],
                lock: InstanceLock) -> ExitCode:
    try:
        check_ports(planned_ports(config))
    except ConfigError as exc:
        logger.error("%s", exc)
        return ExitCode.CONFIG_ERROR
    config = keep_generated_tokens(config)
    try:
        prepare_ide(config)
        run_dir = RunDir.create(config)
    except ConfigError as exc:
        logger.error("%s", exc)
        return ExitCode.CONFIG_ERROR
    except OSError as exc:
        logger.error("cannot prepare the run directories: %s", exc)
        return ExitCode.STARTUP_FAILURE
    runtime_file = RuntimeFile(config)
    try:
        specs = build_specs(config, run_dir.paths, extra_args)
        failure = check_settings(specs)
        if failure is not None:
            logger.error("%s: %s", failure.name, failure.message)
            return (ExitCode.CONFIG_ERROR if failure.exit_code == ExitCode.CONFIG_ERROR
                    else ExitCode.STARTUP_FAILURE)
        components = ComponentsFile(run_dir.paths.components_file)
        idle = (IdleWatch(run_dir.paths.activity_dir, config.idle)
                if config.idle.enabled else None)

        def on_change(entries: Sequence[ChildEntry]) -> None:
            components.write(entries)
            lock.record(entries)

        supervisor = Supervisor(specs, ChildProcess, on_change=on_change,
                                on_ready=lambda: _on_ready(config, runtime_file),
                                should_stop=idle.tick if idle is not None else lambda: False)
        logger.info("supervisor [%d] starting %s", os.getpid(),
                    ", ".join(spec.name for spec in specs))
        with supervisor.capture_signals():
            code = supervisor.run()
        logger.info("supervisor [%d] exiting with %d (%s)", os.getpid(), code, code.name)
        return code
    finally:
        runtime_file.remove()
        run_dir.cleanup()
        cleanup_ide(config)


def _on_ready(config: SupervisorConfig, runtime_file: RuntimeFile) -> None:
    runtime_file.publish()
    for line in banner_lines(config):
        logger.info("%s", line)

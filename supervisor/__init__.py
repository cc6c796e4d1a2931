"""The WAIIDE Hub supervisor: starts, readies, restarts and stops every component.

Entry point: `python supervisor_main.py` (`supervisor_main.main`). Modules, one concept each:

    config        SupervisorConfig.from_env: every variable the supervisor reads, validated
    errors        exceptions and the named exit codes
    spec          ChildSpec, ReadyCheck, RestartPolicy, LivenessPolicy (immutable descriptions)
    components    the children in start order: argv, environment, readiness
    jupyter       full mode's Jupyter child and its jupyter-server-proxy configuration
    rundir        the temp run directory and the Prometheus multiprocess directory
    ide_socket    the IDE's private unix socket (default) and when TCP is used instead
    ide_settings  the IDE's managed defaults: machine settings, heap cap, public prefix
    ide_setup     what is prepared for the IDE before it starts, and cleaned up after
    credentials   generated tokens kept 0600 for the user across restarts
    process       ChildProcess: a real child in its own process group
    probe         one HTTP readiness/liveness probe over TCP or a unix socket
    ownership     readiness means this child: the answering listener is in its process tree
    instance_lock one supervisor per uid + API_SERVER_PORT; a dead one's leftovers killed
    ports         PORT, API_SERVER_PORT and the IDE's port checked free before any start
    preflight     every child's settings checked (`--check-config`) before any start
    relay         `[name] ` prefixed copying of each child's output
    restart       backoff and flap detection
    lifecycle     ChildState and the per-child record the loop keeps
    supervisor    the loop: startup, keep_children_alive, signals, shutdown
    status_file   the components file the monitor reads (MONITOR_COMPONENTS_FILE)
    banner        the URLs printed once everything is ready
    app           one run wired together

It imports neither `gateway` nor `monitor`: it talks to them only through argv and environment.
"""

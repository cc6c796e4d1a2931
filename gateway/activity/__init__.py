"""What counts as use of this server, measured where it happens, and where it is reported.

    classify     which traffic is use (and of what kind) and which is ignored (and why)
    state        WorkerActivity: one worker's view, published to the activity directory
    hub          ActivityReporter: real use posted to JUPYTERHUB_ACTIVITY_URL
    routes       /api/activity, and the IDE extension's report and notice endpoints
    collector    the activity gauges of /metrics

Use is what a person causes: edits, saves, opened files, terminal input, commands, tasks,
debugging, keyboard and mouse in a focused window (reported by the extension built into the
IDE, `ide-extension/`), and direct HTTP use through the gateway that is not polling (a page
opened, an upload, a download). Everything a tab does by itself — VS Code's keepalives and RPC
polling, WebSocket pings, health probes, metrics scrapes — is counted as ignored, never as use.
"""

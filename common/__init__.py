"""What the three WAIIDE Hub processes (supervisor, gateway, monitor) must agree on.

Stdlib only, and the one package every other package may import (tests/test_layering.py).
Modules, one concept each:

    env               EnvReader: the one environment reader (casts, blank = unset, named errors)
    errors            WaiideHubError, ConfigError: the error base every package derives from
    exits             ExitCode: what each process's exit status means
    defaults          default ports and addresses, the internal header, health paths, loopback rule
    components_file   the supervisor -> monitor/gateway file of pids and restarts (writer and reader)
    prometheus_mode   whether prometheus_client runs in multiprocess mode in this process
    auth_mode         AuthMode and the rule resolving GATEWAY_AUTH (supervisor and gateway)
    cgroup            the CPUs and memory this process may use (affinity, cgroup v1/v2 limits)
"""

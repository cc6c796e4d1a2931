"""The WAIIDE Hub gateway: a multi-worker Sanic server that proxies WAIIDE and serves /api.

Entry point: `python -m gateway` (`gateway.__main__`). Modules, by concept:

    config            GatewayConfig.from_env: every variable the gateway reads, validated
    errors            the gateway's exceptions; upstream failures and their HTTP status
    app               create_app: one worker's Sanic app wired together (routes, lifecycle)
    sanic_compat      every use of Sanic's internals, checked at start
    proxy             Proxy: target -> access -> HTTP relay or WebSocket tunnel
    pages             the pages the gateway writes itself (errors, token login)
    api               /api, /api/status, /api/user, /api/services, /api/healthz
    status            the /api/status and /api/services bodies from the status record
    metrics           Prometheus metrics of every worker, and /metrics
    workers           WorkerKeeper (main process): restarting dead workers with backoff;
                      Capacity: workers up of expected, for status and metrics
    serve             running the workers (python -m gateway without --check-config)
    listen            binding API_SERVER_PORT and PORT once in the main process
    metrics_dir       the multiprocess directory of a gateway run without the supervisor

    access/           who may reach WAIIDE
        verdict         Verdict, Outcome, Authorizer, credential stripping, InternalHop
        token           TokenAuth: the standalone token and its cookie
        hub             HubTokenAuth: hub tokens, scopes, the OAuth login (lightweight mode)
        gate            Access: authorize and refuse (proxy and API routes)
    http/             HTTP to WAIIDE
        target          origin-form targets, the public prefix
        headers         the request head WAIIDE receives, response fields passed through
        upstream        UpstreamConnection: the lean HTTP/1.1 client connection
        pool            UpstreamPool: keep-alive connections per worker
        relay           HttpRelay: one exchange streamed both ways
    ws/               WebSockets to WAIIDE
        upgrade         WebSocketProxy: WAIIDE's handshake first, then a tunnel
        tunnel          Tunnel: the byte relay with frame-boundary tracking, pings, close codes
        frames          FrameScanner: WebSocket frame boundaries without copying payloads
        registry        TunnelRegistry: open tunnels, their metrics, 1001 at shutdown
    edge/             the strict front door (every port)
        rules           RFC 9110/9112 checks of heads and chunked framing; HttpViolation
        protocol        Sanic's HTTP/1 protocol with those checks, the header timeout and cap
    activity/         what counts as use (see its index)
    singleuser/       lightweight mode: the gateway as the hub's single-user server on PORT
        endpoint        SingleUserEndpoint: {prefix}api, OAuth callback, {prefix}WAIIDE/
        listener        MainPortListener: PORT in every worker

It may import `common` and, of the monitor, only `monitor.record` (tests/test_layering.py).
"""

__version__ = "0.1.0"

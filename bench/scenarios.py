"""The scenarios: what load each one puts on a row, how it is verified, and what it reports.

| name      | group | load                                                   | reports          |
|-----------|-------|--------------------------------------------------------|------------------|
| get-1k    | small | wrk, 64 connections, GET 1 KiB for `duration_s`        | req/s, p50, p99  |
| get-64k   | small | wrk, 16 connections, GET 64 KiB for `duration_s`       | req/s, p50, p99  |
| get-256m  | large | 4 connections x `large_per_conn` GETs of 256 MiB       | MB/s             |
| post-64m  | large | 4 connections x `upload_per_conn` POSTs of 64 MiB      | MB/s             |
| ws-echo   | ws    | 32 Node clients, 1 KiB binary echo for `duration_s`    | round trips/s    |
| ws-stream | ws    | one client, `stream_repeats` x 64 MiB stream in a row  | MB/s             |

A measurement's value counts only verified work; errors are counted beside it, and a run that
verified nothing has no value (the table then says "fails: <first error>").
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from bench import bulk, payload, wrk, ws_stream
from bench.nginx_conf import UPLOAD_PATH
from bench.rows import RowTarget
from bench.tools import BENCH_DIR, Tools
from bench.upstream import Upstream

Group = Literal["small", "large", "ws"]
MB = 1_000_000
WS_EXTRA_TIMEOUT_S = 30.0
WS_CLIENTS = 32
WS_MESSAGE_BYTES = payload.KIB
STREAM_MESSAGES = 64  # of 1 MiB
UPLOAD_SIZE = 64 * payload.MIB
PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Settings:
    """How long and how much each scenario runs."""

    duration_s: float
    large_per_conn: int
    upload_per_conn: int
    stream_repeats: int
    bulk_timeout_s: float
    wrk_threads: int

    @classmethod
    def full(cls) -> Settings:
        return cls(duration_s=5, large_per_conn=2, upload_per_conn=4, stream_repeats=8,
                   bulk_timeout_s=90, wrk_threads=2)

    @classmethod
    def quick(cls) -> Settings:
        return cls(duration_s=2, large_per_conn=1, upload_per_conn=1, stream_repeats=2,
                   bulk_timeout_s=45, wrk_threads=2)


@dataclass(frozen=True, slots=True)
class Env:
    """What every scenario can use."""

    tools: Tools
    upstream: Upstream
    settings: Settings
    upload_body: bytes
    stream_crc32: int


@dataclass(slots=True)
class Measurement:
    """One scenario on one row in one round."""

    value: float | None
    errors: int = 0
    error: str | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    rss_growth: int | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named load with its unit and group."""

    name: str
    title: str
    unit: str
    group: Group
    measure: Callable[[Env, RowTarget], Measurement]


def _probe_file(env: Env, target: RowTarget, name: str) -> str | None:
    """Fetch one file through the row and check it; return why it is wrong, or None."""
    body_file = env.upstream.files[name]
    try:
        with urllib.request.urlopen(f"{target.base_url}/{name}",
                                    timeout=PROBE_TIMEOUT_S) as resp:
            status, body = int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} for GET /{name}"
    except OSError as exc:
        return f"GET /{name}: {exc}"
    if status != 200 or len(body) != body_file.size or zlib.crc32(body) != body_file.crc32:
        return f"GET /{name}: status {status}, {len(body)} bytes, checksum mismatch or short"
    return None


def _wrk_get(name: str, connections: int) -> Callable[[Env, RowTarget], Measurement]:
    def measure(env: Env, target: RowTarget) -> Measurement:
        problem = _probe_file(env, target, name)
        if problem:
            return Measurement(None, errors=1, error=problem)
        try:
            rep = wrk.run(env.tools.wrk, f"{target.base_url}/{name}", connections=connections,
                          threads=env.settings.wrk_threads, duration_s=env.settings.duration_s)
        except wrk.WrkError as exc:
            return Measurement(None, errors=1, error=str(exc))
        ok = rep.requests - rep.non_2xx
        errors = rep.non_2xx + rep.socket_errors
        error = f"{rep.non_2xx} non-2xx, {rep.socket_errors} socket errors" if errors else None
        if ok > 0 and rep.bytes_read < ok * env.upstream.files[name].size * 0.99:
            return Measurement(None, errors=ok, error="responses shorter than the body")
        return Measurement(ok / rep.seconds if ok > 0 else None, errors=errors, error=error,
                           p50_ms=rep.p50_s * 1e3 if rep.p50_s is not None else None,
                           p99_ms=rep.p99_s * 1e3 if rep.p99_s is not None else None)
    return measure


def _bulk(result: bulk.BulkResult) -> Measurement:
    value = result.bytes_ok / MB / result.seconds if result.bytes_ok and result.seconds else None
    return Measurement(value, errors=result.errors, error=result.first_error)


def _get_large(env: Env, target: RowTarget) -> Measurement:
    body_file = env.upstream.files["f256m"]
    transfer = bulk.download(f"{target.path_prefix}/{body_file.name}", body_file.size,
                             body_file.crc32)
    return _bulk(bulk.run(target.base_url, transfer, connections=4,
                          per_connection=env.settings.large_per_conn,
                          timeout_s=env.settings.bulk_timeout_s))


def _post_large(env: Env, target: RowTarget) -> Measurement:
    transfer = bulk.upload(f"{target.path_prefix}{UPLOAD_PATH}", env.upload_body)
    return _bulk(bulk.run(target.base_url, transfer, connections=4,
                          per_connection=env.settings.upload_per_conn,
                          timeout_s=env.settings.bulk_timeout_s))


def _ws_load(env: Env, args: list[str], timeout_s: float) -> dict[str, object]:
    argv = [env.tools.node, str(BENCH_DIR / "ws_load.js"), *args, "--timeout-s", str(timeout_s)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=timeout_s + WS_EXTRA_TIMEOUT_S,
                              env=env.tools.env(NODE_PATH=str(env.tools.npm_modules)))
    except subprocess.TimeoutExpired:
        return {"errors": 1, "error": "ws_load.js did not finish"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"errors": 1, "error": f"ws_load.js exited {done.returncode}: {done.stderr[-300:]}"}
    parsed: dict[str, object] = json.loads(lines[-1])
    return parsed


def _num(report: dict[str, object], key: str) -> float:
    value = report.get(key, 0)
    return float(value) if isinstance(value, int | float) else 0.0


def _ws_echo(env: Env, target: RowTarget) -> Measurement:
    duration = env.settings.duration_s
    rep = _ws_load(env, ["echo", "--url", f"{target.ws_base}/ws/echo",
                         "--clients", str(WS_CLIENTS), "--duration-s", str(duration),
                         "--message-bytes", str(WS_MESSAGE_BYTES)], duration + 30)
    ok, seconds = _num(rep, "ok"), _num(rep, "seconds")
    return Measurement(ok / seconds if ok and seconds else None, errors=int(_num(rep, "errors")),
                       error=str(rep["error"]) if rep.get("error") else None)


def _ws_stream(env: Env, target: RowTarget) -> Measurement:
    parts = urlsplit(target.origin)
    path = f"{target.path_prefix}/ws/stream?messages={STREAM_MESSAGES}"
    size = STREAM_MESSAGES * payload.MIB
    result = Measurement(None)
    verified = 0
    started = time.perf_counter()
    for _ in range(env.settings.stream_repeats):
        try:
            got = ws_stream.read_stream(parts.hostname or "127.0.0.1", parts.port or 80, path,
                                        env.settings.bulk_timeout_s)
        except ws_stream.StreamError as exc:
            result.errors += 1
            result.error = result.error or str(exc)
            break
        if got.nbytes != size or got.crc32 != env.stream_crc32:
            result.errors += 1
            result.error = result.error or f"stream: {got.nbytes} of {size} bytes or bad checksum"
            break
        verified += got.nbytes
        if got.close_code != 1000:
            result.note = ("stream ends without a close frame" if got.close_code is None else
                           f"stream ends with close code {got.close_code}")
            result.note += " (upstream sent 1000)"
    seconds = time.perf_counter() - started
    result.value = verified / MB / seconds if verified else None
    return result


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("get-1k", "1 KiB GET, 64 conn", "req/s", "small", _wrk_get("f1k", 64)),
    Scenario("get-64k", "64 KiB GET, 16 conn", "req/s", "small", _wrk_get("f64k", 16)),
    Scenario("get-256m", "256 MiB GET, 4 conn", "MB/s", "large", _get_large),
    Scenario("post-64m", "64 MiB POST, 4 conn", "MB/s", "large", _post_large),
    Scenario("ws-echo", "WS 1 KiB echo, 32 clients", "rt/s", "ws", _ws_echo),
    Scenario("ws-stream", "WS 64 MiB stream", "MB/s", "ws", _ws_stream),
)

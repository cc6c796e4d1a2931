"""Small-GET load with wrk (Debian), and the parsing of its report.

wrk counts responses with a status above 399 as "Non-2xx or 3xx responses"; those, and socket
errors, are errors here and are taken out of the request rate. A 3xx would slip through wrk's
count, so the rate is also checked against the bytes read: a row whose responses average fewer
bytes than the body size is not serving the body (before wrk runs, the scenario also fetches the
body once and checks its checksum).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

EXTRA_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 10
_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_UNITS_B = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


class WrkError(Exception):
    """wrk did not run or its report could not be read."""


@dataclass(frozen=True, slots=True)
class WrkReport:
    """What one wrk run measured."""

    requests: int
    seconds: float
    bytes_read: int
    non_2xx: int
    socket_errors: int
    p50_s: float | None
    p99_s: float | None


def _duration_s(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise WrkError(f"unreadable duration {text!r}")
    return float(match.group(1)) * _UNITS_S[match.group(2)]


def parse(report: str) -> WrkReport:
    """Read wrk's text report (run with --latency)."""
    total = re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+)(B|KB|MB|GB|TB) read", report)
    if not total:
        raise WrkError(f"no request total in wrk output: {report.strip()[-300:]!r}")
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     report)
    status = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    p50 = re.search(r"^\s+50%\s+(\S+)", report, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", report, re.MULTILINE)
    return WrkReport(
        requests=int(total.group(1)),
        seconds=_duration_s(total.group(2)),
        bytes_read=int(float(total.group(3)) * _UNITS_B[total.group(4)]),
        non_2xx=int(status.group(1)) if status else 0,
        socket_errors=sum(int(n) for n in sock.groups()) if sock else 0,
        p50_s=_duration_s(p50.group(1)) if p50 else None,
        p99_s=_duration_s(p99.group(1)) if p99 else None,
    )


def run(wrk: str, url: str, *, connections: int, threads: int, duration_s: float) -> WrkReport:
    """Run wrk against `url` for `duration_s` and return its parsed report."""
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s",
            "--latency", f"--timeout={REQUEST_TIMEOUT_S}s", url]
    try:
        done = subprocess.run(argv, capture_output=True, text=True,
                              timeout=duration_s + EXTRA_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {duration_s + EXTRA_TIMEOUT_S:.0f}s") from exc
    except OSError as exc:
        raise WrkError(f"cannot run wrk: {exc}") from exc
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}: {done.stderr.strip()[-300:]}")
    return parse(done.stdout)

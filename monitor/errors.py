"""The monitor's exceptions, so callers can tell a bad setting from a failed probe.

common.errors.WaiideHubError
 ├─ common.errors.ConfigError   a setting has a bad value; names the variable and the value
 └─ MonitorError
     └─ ProbeError    one probe failed; `kind` is the metric label (connect_error, timeout, ...)

The record's own errors (RecordError and subclasses) live in `monitor.record`, which is stdlib-only
and imported by the gateway too.
"""

from __future__ import annotations

from typing import Literal

from common.errors import WaiideHubError

ProbeFailureKind = Literal["connect_error", "timeout", "http_status", "protocol_error"]


class MonitorError(WaiideHubError):
    """Base class of the monitor's errors."""


class ProbeError(MonitorError):
    """A probe got no usable answer; `kind` is a small closed set, safe as a metric label."""

    def __init__(self, kind: ProbeFailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: ProbeFailureKind = kind
        self.reason = reason

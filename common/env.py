"""`EnvReader`: the one way WAIIDE Hub reads its environment.

Every config module (supervisor, gateway, monitor) reads through it, so the rules are the same in
every process:

- a variable that is unset, empty or only whitespace means "use the default";
- values are stripped;
- a value that does not cast or does not pass its check raises `ConfigError` naming the variable
  and the value as given ("Config 'MONITOR_INTERVAL' has value 'abc'. Not a valid number of
  seconds > 0.");
- booleans accept only true/false/1/0 (any case);
- the mapping is injected (a plain dict in tests), never read from `os.environ` here.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Callable, Mapping
from typing import TypeVar

from common.errors import ConfigError

T = TypeVar("T")


class EnvReader:
    """Typed, validated access to one environment mapping."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def raw(self, key: str) -> str | None:
        """The stripped value, or None when unset or blank."""
        value = self.environ.get(key)
        if value is None or not value.strip():
            return None
        return value.strip()

    def is_set(self, key: str) -> bool:
        return self.raw(key) is not None

    def text(self, key: str, default: str) -> str:
        raw = self.raw(key)
        return default if raw is None else raw

    def cast(self, key: str, default: T, cast: Callable[[str], T], what: str,
             check: Callable[[T], bool] = lambda _v: True) -> T:
        """`cast(value)` if it passes `check`; `what` names the expected kind in the error."""
        raw = self.raw(key)
        if raw is None:
            return default
        try:
            value = cast(raw)
        except ValueError:
            raise ConfigError(key, raw, f"Not a valid {what}.") from None
        if not check(value):
            raise ConfigError(key, raw, f"Not a valid {what}.")
        return value

    def flag(self, key: str, default: bool) -> bool:
        raw = self.raw(key)
        if raw is None:
            return default
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise ConfigError(key, raw, "Use true, false, 1 or 0.")

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key, default).lower()
        if value not in allowed:
            raise ConfigError(key, value, f"Use one of: {', '.join(allowed)}.")
        return value

    def port(self, key: str, default: int) -> int:
        return self.cast(key, default, _decimal, "TCP port (1-65535)", lambda p: 0 < p < 65536)

    def seconds(self, key: str, default: float, *, maximum: float = math.inf) -> float:
        """A positive, finite number of seconds (at most `maximum`)."""
        what = "number of seconds > 0" + (f" and <= {maximum:g}" if maximum < math.inf else "")
        return self.cast(key, default, float, what,
                         lambda v: 0 < v <= maximum and math.isfinite(v))

    def seconds_or_zero(self, key: str, default: float) -> float:
        """A finite number of seconds >= 0 (0 usually means "off")."""
        return self.cast(key, default, float, "number of seconds >= 0",
                         lambda v: v >= 0 and math.isfinite(v))

    def count(self, key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        what = f"whole number >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        return self.cast(key, default, _decimal, what,
                         lambda n: n >= minimum and (maximum is None or n <= maximum))

    def byte_size(self, key: str) -> int | None:
        """A size in bytes, plain or with a K/M/G/T suffix (powers of 1024, "Ki"/"KiB" too)."""
        return self.cast(key, None, _byte_size, "size in bytes (e.g. 2147483648, 2G, 512Mi)")

    def command(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A shell-like command line, split into argv (no shell runs it)."""
        raw = self.raw(key)
        if raw is None:
            return default
        try:
            argv = tuple(shlex.split(raw))
        except ValueError as exc:
            raise ConfigError(key, raw, f"Not a valid shell-like command ({exc}).") from None
        if not argv:
            raise ConfigError(key, raw, "The command is empty.")
        return argv

    def absolute_path(self, key: str) -> str | None:
        raw = self.raw(key)
        if raw is not None and not os.path.isabs(raw):
            raise ConfigError(key, raw, "Use an absolute path.")
        return raw

    def url_path(self, key: str, default: str) -> str:
        value = self.text(key, default)
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ConfigError(key, value, "Must be a URL path starting with '/'.")
        return value

    def prefix(self, key: str = "JUPYTERHUB_SERVICE_PREFIX") -> str:
        """A URL prefix, always ending in '/'."""
        value = self.url_path(key, "/")
        return value if value.endswith("/") else value + "/"


def _decimal(raw: str) -> int:
    # int() accepts "+5", "0_5" and non-ASCII digits; a setting is plain ASCII digits.
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError(raw)
    return int(raw)


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _byte_size(raw: str) -> int | None:
    text = raw.upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
    number = _decimal(text[: len(text) - len(unit)])
    if number <= 0:
        raise ValueError(raw)
    return number * _SIZE_UNITS[unit]

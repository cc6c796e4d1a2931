"""A small reader of this repo's Dockerfile, for tests that check it without a Docker engine.

It understands what the Dockerfile uses: comments, line continuations, `ARG`/`ENV` with
`${VAR}` defaults, and JSON (exec-form) arguments. It is not a general Dockerfile parser; the
linter (hadolint) checks the syntax.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tests.procs import ROOT

DOCKERFILE = ROOT / "Dockerfile"
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction: upper-case keyword and its raw argument text (continuations joined)."""

    keyword: str
    text: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON-array argument (ENTRYPOINT/CMD/HEALTHCHECK CMD exec form)."""
        start = self.text.index("[")
        value = json.loads(self.text[start:])
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The instructions in order (comments and parser directives dropped)."""
    result: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        continued = line.endswith("\\")
        pending.append(line[:-1].strip() if continued else line)
        if not continued:
            text = " ".join(part for part in pending if part)
            keyword, _, rest = text.partition(" ")
            result.append(Instruction(keyword.upper(), rest.strip(), start))
            pending = []
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def build_vars(path: Path = DOCKERFILE) -> dict[str, str]:
    """ARG defaults and ENV values, in order, with `${VAR}` references resolved."""
    values: dict[str, str] = {}
    for ins in instructions(path):
        if ins.keyword not in ("ARG", "ENV"):
            continue
        for token in shlex.split(ins.text):
            name, sep, value = token.partition("=")
            if sep:
                values[name] = expand(value, values)
    return values


def expand(text: str, values: dict[str, str]) -> str:
    return _VAR.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def image_entrypoint(path: Path = DOCKERFILE) -> list[str]:
    """The WAIIDE entrypoint command the image runs (its CMD) — what spawners' `cmd` names."""
    [cmd] = [ins for ins in instructions(path) if ins.keyword == "CMD"]
    return cmd.exec_form()

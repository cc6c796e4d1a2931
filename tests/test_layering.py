"""The boundaries between the three deployables, checked on the source (STYLE.md, Layout).

- gateway/ may import only `monitor.record` from monitor/ (the status record's one owner);
- monitor/ imports nothing from gateway/ or supervisor/;
- supervisor/ and supervisor_main.py import neither gateway/ nor monitor/ (they pass env and argv);
- the environment is read only in config modules (and handed to them by the entry points).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import ROOT

PACKAGES = ("gateway", "monitor", "supervisor")


def sources(package: str) -> Iterator[Path]:
    if package == "supervisor":
        yield ROOT / "supervisor_main.py"
    yield from sorted((ROOT / package).rglob("*.py"))


def imported_modules(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


ALLOWED = {
    "gateway": {"gateway", "monitor.record"},
    "monitor": {"monitor"},
    "supervisor": {"supervisor"},
}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_respect_the_layers(package: str) -> None:
    bad = []
    for path in sources(package):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top not in PACKAGES:
                continue
            if not any(module == a or module.startswith(a + ".") for a in ALLOWED[package]):
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)


def environ_reads(path: Path) -> Iterator[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                isinstance(node.value, ast.Name) and node.value.id == "os":
            yield node.lineno


@pytest.mark.parametrize("package", PACKAGES)
def test_environment_is_read_only_in_config_modules(package: str) -> None:
    bad = []
    for path in sources(package):
        if path.name == "config.py":
            continue
        for line in environ_reads(path):
            # The entry point may hand os.environ to from_env(); nothing else may read it.
            text = path.read_text().splitlines()[line - 1]
            if "from_env(os.environ)" in text:
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line}: {text.strip()}")
    assert not bad, "\n".join(bad)

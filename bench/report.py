"""Summaries of the measurements: medians over rounds, ratios, the printed table and the JSON file.

A (scenario, row) cell's value is the median over the rounds that verified something; its RSS
growth is the largest seen in any round (the target is a peak); its errors are summed. Ratios are
to the direct row (the limit) and to configurable-http-proxy (the baseline to beat), computed
from the medians of the same run. `spread` is half the range of the rounds' values over the
median: how much the run itself moved, to weigh a ratio against.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.scenarios import Measurement, Scenario

MIB = 1 << 20
REASON_WIDTH = 70


@dataclass(slots=True)
class Cell:
    """The summary of one scenario on one row."""

    scenario: str
    row: str
    unit: str
    median: float | None = None
    rounds: int = 0
    rounds_ok: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    rss_growth_mib: float | None = None
    errors: int = 0
    error: str | None = None
    note: str | None = None
    unavailable: str | None = None
    vs_direct: float | None = None
    vs_chp: float | None = None
    values: list[float] = field(default_factory=list)

    @property
    def spread_pct(self) -> float | None:
        """Half the range of the rounds' values, in percent of the median (the run's noise)."""
        if len(self.values) < 2 or not self.median:
            return None
        return 50.0 * (max(self.values) - min(self.values)) / self.median


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(scenario: Scenario, row: str, runs: list[Measurement],
              unavailable: str | None) -> Cell:
    """Fold the rounds of one scenario on one row into a cell."""
    cell = Cell(scenario.name, row, scenario.unit, unavailable=unavailable, rounds=len(runs))
    if unavailable:
        return cell
    cell.values = [run.value for run in runs if run.value is not None]
    cell.rounds_ok = len(cell.values)
    cell.median = _median(cell.values)
    cell.p50_ms = _median([run.p50_ms for run in runs if run.p50_ms is not None])
    cell.p99_ms = _median([run.p99_ms for run in runs if run.p99_ms is not None])
    growths = [run.rss_growth for run in runs if run.rss_growth is not None]
    cell.rss_growth_mib = max(growths) / MIB if growths else None
    cell.errors = sum(run.errors for run in runs)
    cell.error = next((run.error for run in runs if run.error), None)
    cell.note = next((run.note for run in runs if run.note), None)
    return cell


def add_ratios(cells: list[Cell]) -> None:
    """Fill each cell's ratio to the direct and chp cells of the same scenario."""
    by_key = {(cell.scenario, cell.row): cell for cell in cells}
    for cell in cells:
        if cell.median is None:
            continue
        for ref_row, attr in (("direct", "vs_direct"), ("chp", "vs_chp")):
            ref = by_key.get((cell.scenario, ref_row))
            if ref is not None and ref.median:
                setattr(cell, attr, cell.median / ref.median)


def _fmt(value: float | None, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _note(cell: Cell) -> str:
    if cell.unavailable:
        return "unavailable: " + _short(cell.unavailable)
    if cell.median is None:
        return "fails: " + _short(cell.error or "no verified transfer")
    notes = []
    if cell.rounds_ok < cell.rounds:
        notes.append(f"{cell.rounds - cell.rounds_ok}/{cell.rounds} rounds failed")
    if cell.errors:
        notes.append(f"{cell.errors} errors: {_short(cell.error or '?')}")
    if cell.note:
        notes.append(_short(cell.note))
    return "; ".join(notes)


def _spread(cell: Cell) -> str:
    spread = cell.spread_pct
    return "-" if spread is None else f"±{spread:.0f}%"


def _short(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= REASON_WIDTH else reason[: REASON_WIDTH - 3] + "..."


def table(scenarios: list[Scenario], rows: list[str], cells: list[Cell]) -> str:
    """The one table: a block per scenario, a line per row."""
    by_key = {(cell.scenario, cell.row): cell for cell in cells}
    head = (f"{'scenario':<26} {'row':<10} {'median':>11} {'unit':<6} {'spread':>6} "
            f"{'x direct':>8} {'x chp':>6} {'p50 ms':>7} {'p99 ms':>7} {'RSS +MiB':>8}  notes")
    lines = [head, "-" * len(head)]
    for scenario in scenarios:
        for i, row in enumerate(rows):
            cell = by_key[(scenario.name, row)]
            title = scenario.title if i == 0 else ""
            if cell.median is None:
                lines.append(f"{title:<26} {row:<10} {'':>11} {'':<6} {'':>6} {'':>8} {'':>6} "
                             f"{'':>7} {'':>7} {'':>8}  {_note(cell)}")
                continue
            lines.append(
                f"{title:<26} {row:<10} {cell.median:>11,.0f} {cell.unit:<6} "
                f"{_spread(cell):>6} {_fmt(cell.vs_direct, '.2f'):>8} "
                f"{_fmt(cell.vs_chp, '.2f'):>6} "
                f"{_fmt(cell.p50_ms, '.2f'):>7} {_fmt(cell.p99_ms, '.2f'):>7} "
                f"{_fmt(cell.rss_growth_mib, '.1f'):>8}  {_note(cell)}".rstrip())
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_json(path: Path, settings: dict[str, object], rows: dict[str, str | None],
               raw: list[dict[str, object]], cells: list[Cell]) -> None:
    """Save the settings, each row's availability, every measurement and the summary."""
    doc = {"settings": settings, "rows": rows, "measurements": raw,
           "summary": [{**asdict(cell), "spread_pct": cell.spread_pct} for cell in cells]}
    path.write_text(json.dumps(doc, indent=2) + "\n")

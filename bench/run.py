"""WAIIDE Hub benchmark: the gateway against direct access and its peers, side by side in one run.

    .venv/bin/python bench/run.py                       # every row and scenario, 2 rounds
    .venv/bin/python bench/run.py --quick --rows direct,chp
    .venv/bin/python bench/run.py --rows direct,gateway,chp --scenarios small,ws --rounds 3
    .venv/bin/python bench/run.py --json out.json --gateway-env GATEWAY_WORKERS=2

One upstream (nginx with generated files and an upload sink, /ws/ to a Node `ws` echo and stream
server) serves every row: direct, the gateway, configurable-http-proxy, nginx unbuffered and with
64 KiB buffers, jupyter-server-proxy (bench/rows.py). Every row runs at once; for each scenario
(bench/scenarios.py) the rows are measured in turn, A B C A B C, for `--rounds` rounds, and the
table gives the medians, the ratios to direct and to configurable-http-proxy, and each proxy's
peak RSS growth over its idle RSS (its whole process tree, sampled every 50 ms).

Loopback only. Everything lives in a temp dir that is removed at the end (`--keep-tmp` keeps it,
with every server's log); every process started is stopped by process group in `finally`.
On a shared 2-core machine absolute numbers are noisy: compare rows within one run.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

if __package__ in (None, ""):
    # Run as a script (`python bench/run.py`): make the `bench` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import payload, proctree, report, wrk
from bench.procs import ServiceError
from bench.rows import ROW_NAMES, RowContext, RowTarget, start_row
from bench.scenarios import SCENARIOS, Env, Measurement, Scenario, Settings
from bench.tools import Tools
from bench.upstream import running_upstream

logger = logging.getLogger("bench")

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_MISSING_TOOLS = 3
EXIT_UPSTREAM_FAILED = 4
EXIT_INTERRUPTED = 130
SETTLE_TIMEOUT_S = 5.0
WARM_UP_S = 1.0
GROUPS = {"all": [s.name for s in SCENARIOS],
          **{g: [s.name for s in SCENARIOS if s.group == g] for g in ("small", "large", "ws")}}


@dataclass(frozen=True, slots=True)
class Options:
    """The command line, checked."""

    rows: list[str]
    scenarios: list[Scenario]
    rounds: int
    quick: bool
    settings: Settings
    json_path: Path | None
    gateway_env: dict[str, str]
    keep_tmp: bool
    verbose: bool


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    summary, _, details = (__doc__ or "").partition("\n\n")
    parser = argparse.ArgumentParser(description=summary, epilog=details,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(ROW_NAMES),
                        help=f"comma-separated rows, in table order (default: all: "
                             f"{','.join(ROW_NAMES)})")
    parser.add_argument("--scenarios", default="all",
                        help="comma-separated scenarios or groups: "
                             + ", ".join([*GROUPS, *(s.name for s in SCENARIOS)]))
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of A B C ... per scenario (default 2, 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 s loads, one large transfer per connection")
    parser.add_argument("--duration-s", type=float, default=None,
                        help="seconds per small-GET and WS-echo measurement (default 5, quick 2)")
    parser.add_argument("--json", dest="json_path", type=Path, default=None,
                        help="also save settings, every measurement and the summary here")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the gateway (repeatable)")
    parser.add_argument("--keep-tmp", action="store_true",
                        help="keep the temp dir (configs, server logs) and print its path")
    parser.add_argument("-v", "--verbose", action="store_true", help="log process lifecycle")
    return parser


def parse_args(argv: Sequence[str]) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    rows = _split(args.rows)
    unknown = [row for row in rows if row not in ROW_NAMES]
    if unknown or not rows:
        parser.error(f"--rows has {','.join(unknown) or 'nothing'}; choose from {ROW_NAMES}")
    wanted: list[str] = []
    for name in _split(args.scenarios):
        names = GROUPS.get(name, [name] if name in GROUPS["all"] else None)
        if names is None:
            parser.error(f"--scenarios has unknown {name!r}")
        wanted += [n for n in names if n not in wanted]
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 2)
    if rounds < 1:
        parser.error(f"--rounds has value {rounds}; it must be at least 1")
    settings = Settings.quick() if args.quick else Settings.full()
    if args.duration_s is not None:
        if args.duration_s < 1:
            parser.error(f"--duration-s has value {args.duration_s}; it must be at least 1")
        settings = Settings(**{**asdict(settings), "duration_s": args.duration_s})
    gateway_env = {}
    for item in args.gateway_env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--gateway-env has value {item!r}; expected KEY=VALUE")
        gateway_env[key] = value
    return Options(rows=list(dict.fromkeys(rows)),
                   scenarios=[s for s in SCENARIOS if s.name in wanted], rounds=rounds,
                   quick=args.quick, settings=settings, json_path=args.json_path,
                   gateway_env=gateway_env, keep_tmp=args.keep_tmp,
                   verbose=args.verbose)


def _start_rows(ctx: RowContext, names: list[str]) -> tuple[list[RowTarget], dict[str, str | None]]:
    targets: list[RowTarget] = []
    status: dict[str, str | None] = {}
    for name in names:
        try:
            targets.append(start_row(ctx, name))
            status[name] = None
        except ServiceError as exc:
            status[name] = str(exc)
            print(f"row {name}: unavailable: {exc}", file=sys.stderr)
    return targets, status


def _warm_up(tools: Tools, targets: list[RowTarget]) -> None:
    """A short unrecorded load on each row: JIT compilers, connection pools and workers warm up
    before the first round, so round 1 is not penalised for it."""
    for target in targets:
        try:
            wrk.run(tools.wrk, f"{target.base_url}/f1k", connections=16, threads=1,
                    duration_s=WARM_UP_S)
        except wrk.WrkError as exc:
            logger.warning("warm-up of %s failed: %s", target.name, exc)


def _settle(pids: list[int]) -> None:
    if not proctree.settle(pids, SETTLE_TIMEOUT_S):
        logger.warning("servers still busy after %.0fs; measuring anyway", SETTLE_TIMEOUT_S)


def _measure(scenario: Scenario, env: Env, target: RowTarget) -> Measurement:
    sampler = proctree.RssSampler(target.service.pid) if target.service else None
    if sampler:
        sampler.start()
    try:
        result = scenario.measure(env, target)
    finally:
        growth = sampler.stop() if sampler else None
    result.rss_growth = growth
    return result


def _progress(scenario: Scenario, round_no: int, rounds: int, row: str, m: Measurement) -> None:
    value = f"{m.value:,.0f} {scenario.unit}" if m.value is not None else "no value"
    extra = f" ({m.errors} errors: {m.error})" if m.errors else ""
    rss = f", RSS +{m.rss_growth / payload.MIB:.1f} MiB" if m.rss_growth is not None else ""
    print(f"[{scenario.name} {round_no}/{rounds}] {row:<10} {value}{rss}{extra}", file=sys.stderr,
          flush=True)


def run_plan(options: Options, env: Env, targets: list[RowTarget],
             all_pids: list[int]) -> list[tuple[Scenario, str, int, Measurement]]:
    """Measure every scenario on every row, rows interleaved within each round."""
    done = []
    for scenario in options.scenarios:
        for round_no in range(1, options.rounds + 1):
            for target in targets:
                _settle(all_pids)
                m = _measure(scenario, env, target)
                _progress(scenario, round_no, options.rounds, target.name, m)
                done.append((scenario, target.name, round_no, m))
    return done


def _summarize(options: Options, status: dict[str, str | None],
               done: list[tuple[Scenario, str, int, Measurement]]) -> list[report.Cell]:
    cells = []
    for scenario in options.scenarios:
        for row in options.rows:
            runs = [m for s, r, _, m in done if s is scenario and r == row]
            cells.append(report.summarize(scenario, row, runs, status.get(row)))
    report.add_ratios(cells)
    return cells


def _print_report(options: Options, status: dict[str, str | None], cells: list[report.Cell],
                  started: float) -> None:
    mode = "quick" if options.quick else "full"
    cpus, load = os.cpu_count() or 1, os.getloadavg()[0]
    print(f"\nWAIIDE Hub benchmark ({mode}, {options.rounds} round(s), medians; "
          f"{cpus} CPUs, load avg {load:.2f}, {time.monotonic() - started:.0f} s)")
    if load > cpus:
        print("The machine was busy with other work: expect noise, compare ratios, and consider "
              "more --rounds.")
    print()
    print(report.table(options.scenarios, options.rows, cells))
    for row, reason in status.items():
        if reason:
            print(f"{row}: unavailable: {reason}")
    failed = [cell for cell in cells if cell.error and not cell.unavailable]
    for cell in failed:
        print(f"{cell.scenario} / {cell.row}: {cell.errors} error(s), first: {cell.error}")


def _run(options: Options, tools: Tools, workdir: Path) -> int:
    started = time.monotonic()
    with ExitStack() as stack:
        upstream = stack.enter_context(
            running_upstream(tools, workdir, large_bytes=256 * payload.MIB))
        ctx = RowContext(tools, upstream, workdir, options.gateway_env, stack)
        targets, status = _start_rows(ctx, options.rows)
        env = Env(tools, upstream, options.settings,
                  upload_body=payload.body_bytes(64 * payload.MIB, upstream.block),
                  stream_crc32=payload.crc32_of(64 * payload.MIB, upstream.block))
        pids = [s.pid for s in upstream.services] + [t.service.pid for t in targets if t.service]
        _warm_up(tools, targets)
        done = run_plan(options, env, targets, pids)
    cells = _summarize(options, status, done)
    _print_report(options, status, cells, started)
    if options.json_path:
        raw: list[dict[str, object]] = [{"scenario": s.name, "row": row, "round": n, **asdict(m)}
                                        for s, row, n, m in done]
        report.write_json(options.json_path, {**asdict(options.settings), "rounds": options.rounds,
                                              "quick": options.quick,
                                              "gateway_env": options.gateway_env},
                          status, raw, cells)
        print(f"\nsaved {options.json_path}")
    return EXIT_OK


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM would otherwise end the interpreter without running `finally`, leaving every
    # server running; unwinding as for Ctrl-C stops them.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO if options.verbose else logging.WARNING,
                        stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    tools = Tools.from_env(os.environ)
    missing = tools.missing()
    if missing:
        print(f"missing: {', '.join(missing)} (run `make setup-test`)", file=sys.stderr)
        return EXIT_MISSING_TOOLS
    signal.signal(signal.SIGTERM, _raise_interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="waiide-bench-"))
    # nginx workers run as an unprivileged user when started by root; they must reach the files.
    workdir.chmod(0o755)
    try:
        return _run(options, tools, workdir)
    except KeyboardInterrupt:
        print("interrupted; every process started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ServiceError as exc:
        print(f"upstream failed: {exc}", file=sys.stderr)
        return EXIT_UPSTREAM_FAILED
    finally:
        if options.keep_tmp:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

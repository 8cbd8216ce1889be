#!/usr/bin/env python3
"""Side-by-side funding benchmark: the official SDK's loop vs livepay's, in one process run.

    python bench/funding.py --sessions 50 --seconds 40 [--ticket-seconds 2.5] [--markdown]
    python bench/funding.py ... --update-readme                  # rewrites the table in bench/README.md
    python bench/funding.py ... --update-readme --readme FILE    # ... or in FILE

Two phases run one after the other, each against its own fresh
``livepay.testing.SimulatedOrchestrator`` (orchestrator + remote signer served on loopback,
in real time: 5 s debits, 10 s prepay, 1e9 wei/s):

1. sdk:     N sessions reserved with ``livepeer_gateway.reserve_session`` (which starts the
            SDK's own loop, ``asyncio.create_task(payment_session.run_payments())``), funded
            for ``--seconds``, then closed (``LiveRunnerSession.aclose``);
2. livepay: N sessions reserved with ``livepay.reserve``, funded for ``--seconds``, then
            closed (``Session.aclose``).

Each model runs in a child process of its own (multiprocessing, "spawn"), which sends its
URLs back through a Pipe and then answers the parent's "state" requests over it until "stop".
This process never creates a model: its CPU time (``time.process_time()``) is the client's
alone, the model's work of answering the client's requests included nowhere. The model's own
CPU during the window is read from the child and printed for information only.

Everything is measured over the funding window only: from the moment the last of the N
reservations returned to ``--seconds`` later. Reservations and closes are outside it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import importlib.metadata
import logging
import multiprocessing
import multiprocessing.connection
import os
import platform
import re
import shlex
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import livepay

# The model's price: 1e9 wei per second of session, so credited_wei / 1e9 = seconds bought.
PRICE_WEI_PER_S = 1_000_000_000

README = Path(__file__).with_name("README.md")
BEGIN = "<!-- python-bench -->"
END = "<!-- /python-bench -->"

# How long the parent waits for the model's child process: to start (spawn, import, serve) and
# to answer one request.
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0


@dataclass
class Phase:
    name: str
    sessions: int = 0
    window_s: float = 0.0  # wall seconds of the funding window
    cpu_s: float = 0.0  # this process's CPU seconds during the window (all threads): the client's
    model_cpu_s: float = 0.0  # the model's child process CPU seconds during the window (not counted)
    signer_calls: int = 0  # signer calls during the window (from the model's counters)
    signer_mints: int = 0
    signer_482: int = 0
    payments_accepted: int = 0
    credited_s: float = 0.0  # seconds credited by the model, summed over sessions, at window end
    lived_s: float = 0.0  # wall seconds each session lived (reservation -> window end), summed
    released: int = 0  # sessions the model released before we closed them
    released_unpaid: int = 0
    reserve_s: float = 0.0  # wall time of the N reservations
    close_s: float = 0.0  # wall time of the N closes
    notes: list[str] = field(default_factory=list)

    # -- derived ---------------------------------------------------------------------------
    def cpu_ms_per_cycle(self) -> float:
        return 1000.0 * self.cpu_s / self.signer_calls if self.signer_calls else float("nan")

    def session_hours(self) -> float:
        return self.sessions * self.window_s / 3600.0

    def cpu_ms_per_session_hour(self) -> float:
        h = self.session_hours()
        return 1000.0 * self.cpu_s / h if h else float("nan")

    def calls_per_session_hour(self) -> float:
        h = self.session_hours()
        return self.signer_calls / h if h else float("nan")

    def over_payment(self) -> float:
        return (self.credited_s - self.lived_s) / self.lived_s if self.lived_s else float("nan")


# -- the model, in a child process of its own ----------------------------------------------


def _model_child(conn: multiprocessing.connection.Connection, ticket_seconds: float, seed: int) -> None:
    """The child process: serves one model and answers the parent over ``conn`` until "stop".

    Sends ``("ready", {url, signer_url, runner_url, discovery_url})`` (or ``("error", text)``),
    then answers "state" with ``("state", sim.state())`` and "cpu" with ``("cpu", this
    process's CPU seconds)``; "stop" (or the parent's end of the pipe closing) stops the model
    and ends the process.
    """
    import livepay.testing  # only ever imported here: the parent never serves a model

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        async with livepay.testing.SimulatedOrchestrator(ticket_seconds=ticket_seconds, seed=seed) as sim:
            conn.send(("ready", {
                "url": sim.url,
                "signer_url": sim.signer_url,
                "runner_url": sim.runner_url,
                "discovery_url": sim.discovery_url,
            }))
            while True:
                try:
                    # In a worker thread, so that this event loop stays free while waiting.
                    request = await loop.run_in_executor(None, conn.recv)
                except EOFError:  # the parent went away
                    return
                if request == "state":
                    conn.send(("state", sim.state()))
                elif request == "cpu":
                    conn.send(("cpu", time.process_time()))
                elif request == "stop":
                    return
                else:
                    conn.send(("error", f"unknown request {request!r}"))

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    except BaseException:
        try:
            conn.send(("error", traceback.format_exc()))
        except (OSError, ValueError):
            pass
        raise
    finally:
        conn.close()


class ModelProcess:
    """The parent's handle on a model served by a child process (``async with`` starts/stops it).

    Has the model's ``url``, ``signer_url``, ``runner_url`` and ``discovery_url``, and
    ``state()`` (the model's ``sim.state()``, fetched over the pipe) and ``cpu_s()`` (the
    child's CPU seconds so far).
    """

    def __init__(self, ticket_seconds: float, seed: int) -> None:
        self._args = (float(ticket_seconds), int(seed))
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self.url = self.signer_url = self.runner_url = self.discovery_url = ""

    def _recv(self, expect: str, timeout: float) -> Any:
        assert self._conn is not None and self._proc is not None
        deadline = time.monotonic() + timeout
        while not self._conn.poll(0.1):
            if not self._proc.is_alive():
                raise RuntimeError(f"the model's process ended (exit code {self._proc.exitcode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the model's process did not answer in {timeout:g} s")
        try:
            kind, value = self._conn.recv()
        except EOFError:
            raise RuntimeError("the model's process closed its pipe") from None
        if kind != expect:
            raise RuntimeError(f"the model's process answered {kind!r} instead of {expect!r}: {value}")
        return value

    def _ask(self, request: str) -> Any:
        assert self._conn is not None
        self._conn.send(request)
        return self._recv(request, REQUEST_TIMEOUT_S)

    def state(self) -> dict[str, Any]:
        return self._ask("state")

    def cpu_s(self) -> float:
        return float(self._ask("cpu"))

    async def __aenter__(self) -> ModelProcess:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_model_child, args=(child_conn, *self._args), name="bench-model", daemon=True)
        self._proc.start()
        child_conn.close()  # the child's end lives in the child now
        try:
            urls = await asyncio.to_thread(self._recv, "ready", START_TIMEOUT_S)
        except BaseException:
            self._kill()
            raise
        self.url, self.signer_url = urls["url"], urls["signer_url"]
        self.runner_url, self.discovery_url = urls["runner_url"], urls["discovery_url"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._conn is not None and self._proc is not None
        try:
            self._conn.send("stop")
        except (OSError, ValueError):
            pass
        await asyncio.to_thread(self._proc.join, REQUEST_TIMEOUT_S)
        self._kill()

    def _kill(self) -> None:
        assert self._conn is not None and self._proc is not None
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        self._conn.close()


# -- the phases ------------------------------------------------------------------------------


def _counters(state: dict[str, Any]) -> tuple[int, int, int, int]:
    return (
        int(state["signer_calls"]),
        int(state["signer_mints"]),
        int(state["signer_482"]),
        int(state["payments_accepted"]),
    )


async def _window(
    phase: Phase,
    sim: ModelProcess,
    seconds: float,
    reserved_at: dict[str, float],
) -> None:
    """The measured funding window: CPU, signer calls, credit and session time."""
    before = _counters(sim.state())
    model_c0 = sim.cpu_s()
    t0, c0 = time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    c1, t1 = time.process_time(), time.monotonic()
    model_c1 = sim.cpu_s()
    state = sim.state()
    after = _counters(state)

    phase.window_s = t1 - t0
    phase.cpu_s = c1 - c0
    phase.model_cpu_s = model_c1 - model_c0
    phase.signer_calls, phase.signer_mints, phase.signer_482, phase.payments_accepted = (
        a - b for a, b in zip(after, before)
    )
    ours = {s["id"]: s for s in state["sessions"] if s["id"] in reserved_at}
    missing = set(reserved_at) - set(ours)
    if missing:
        phase.notes.append(f"{len(missing)} sessions unknown to the model")
    phase.credited_s = sum(int(s["credited_wei"]) for s in ours.values()) / PRICE_WEI_PER_S
    phase.lived_s = sum(t1 - reserved_at[sid] for sid in ours)
    phase.released = sum(1 for s in ours.values() if not s["active"])
    phase.released_unpaid = int(state["released_unpaid"])
    if phase.released_unpaid:
        phase.notes.append(f"the model released {phase.released_unpaid} sessions unpaid")


async def run_sdk(args: argparse.Namespace) -> Phase:
    from livepeer_gateway import reserve_session

    phase = Phase("sdk (livepeer-gateway)")
    async with ModelProcess(args.ticket_seconds, args.seed) as sim:
        sessions = []
        reserved_at: dict[str, float] = {}
        t = time.monotonic()
        try:
            for _ in range(args.sessions):
                # reserve_session = runner_selector(...).next() + session._start_payments(), i.e.
                # the SDK's _start_funding: asyncio.create_task(payment_session.run_payments()).
                s = await reserve_session(discovery_url=sim.discovery_url, signer_url=sim.signer_url)
                if s._payment_task is None:  # noqa: SLF001 - checking the SDK really funds it
                    raise RuntimeError("reserve_session started no funding task (free or fixed price?)")
                sessions.append(s)
                reserved_at[s.session_id] = time.monotonic()
        except Exception:
            print("The SDK could not reserve against the model:", file=sys.stderr)
            traceback.print_exc()
            for s in sessions:
                await s.aclose()
            raise SystemExit(2) from None
        phase.reserve_s = time.monotonic() - t
        phase.sessions = len(sessions)

        await _window(phase, sim, args.seconds, reserved_at)

        t = time.monotonic()
        ended = sum(1 for s in sessions if s._payment_task.done())  # noqa: SLF001
        if ended:
            phase.notes.append(f"{ended} SDK funding tasks had ended by themselves")
        for s in sessions:
            await s.aclose()  # cancels run_payments(), then POST {control_url}/stop
        phase.close_s = time.monotonic() - t
    return phase


async def run_livepay(args: argparse.Namespace) -> Phase:
    phase = Phase("livepay")
    async with ModelProcess(args.ticket_seconds, args.seed) as sim:
        sessions: list[livepay.Session] = []
        reserved_at: dict[str, float] = {}
        t = time.monotonic()
        try:
            for _ in range(args.sessions):
                s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
                sessions.append(s)
                reserved_at[s.session_id] = time.monotonic()
        except BaseException:
            for s in sessions:
                await s.aclose()
            raise
        phase.reserve_s = time.monotonic() - t
        phase.sessions = len(sessions)

        await _window(phase, sim, args.seconds, reserved_at)

        t = time.monotonic()
        reasons: dict[str, int] = {}
        for s in sessions:
            reason = await s.aclose()
            reasons[reason] = reasons.get(reason, 0) + 1
        phase.close_s = time.monotonic() - t
        unexpected = {r: n for r, n in reasons.items() if r != "closed by the client"}
        if unexpected:
            phase.notes.append(f"release reasons at close: {unexpected}")
    return phase


# -- report ----------------------------------------------------------------------------------

COLUMNS = [
    ("client", "client"),
    ("sessions", "sessions"),
    ("window s", "window (s)"),
    ("cycles", "payment cycles (signer calls)"),
    ("mints", "signer mints"),
    ("482", "signer 482"),
    ("CPU ms/cycle", "CPU ms per cycle"),
    ("CPU ms/sess-h", "CPU ms per session-hour"),
    ("calls/sess-h", "signer calls per session-hour"),
    ("over-payment", "over-payment"),
    ("released", "released"),
]


def _f(x: float, digits: int = 2) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


def _rows(clients: list[Phase]) -> list[list[str]]:
    rows = []
    for p in clients:
        rows.append(
            [
                p.name,
                str(p.sessions),
                _f(p.window_s, 1),
                str(p.signer_calls),
                str(p.signer_mints),
                str(p.signer_482),
                _f(p.cpu_ms_per_cycle(), 3),
                _f(p.cpu_ms_per_session_hour(), 0),
                _f(p.calls_per_session_hour(), 0),
                f"{100 * p.over_payment():+.1f}%",
                str(p.released),
            ]
        )
    return rows


def _ratio(a: float, b: float) -> str:
    if a != a or b != b or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def _ratios(sdk: Phase, lp: Phase) -> list[tuple[str, str]]:
    return [
        ("CPU per payment cycle, SDK / livepay", _ratio(sdk.cpu_ms_per_cycle(), lp.cpu_ms_per_cycle())),
        ("signer calls per session-hour, SDK / livepay", _ratio(sdk.calls_per_session_hour(), lp.calls_per_session_hour())),
        ("CPU per session-hour, SDK / livepay", _ratio(sdk.cpu_ms_per_session_hour(), lp.cpu_ms_per_session_hour())),
    ]


def _environment() -> str:
    gw = importlib.metadata.version("livepeer-gateway")
    return (
        f"Python {platform.python_version()}, livepay {livepay.__version__}, livepeer-gateway {gw}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}"
    )


def _command(args: argparse.Namespace) -> str:
    parts = ["python", "bench/funding.py", "--sessions", str(args.sessions), "--seconds", f"{args.seconds:g}",
             "--ticket-seconds", f"{args.ticket_seconds:g}", "--seed", str(args.seed)]
    return " ".join(shlex.quote(p) for p in parts)


def _model_cpu(sdk: Phase, lp: Phase) -> str:
    return (
        f"model CPU during the window, in its own process: sdk {1000 * sdk.model_cpu_s:,.0f} ms, "
        f"livepay {1000 * lp.model_cpu_s:,.0f} ms"
    )


def text_report(args: argparse.Namespace, sdk: Phase, lp: Phase, wall: float) -> str:
    header = [c[0] for c in COLUMNS]
    rows = _rows([sdk, lp])
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    out = [
        f"{_command(args)}",
        f"{_environment()}",
        "",
        "CPU: this process only (the client); each model ran in a child process of its own",
        "",
        line(header),
        line(["-" * w for w in widths]),
        *(line(r) for r in rows),
        "",
        *(f"{name}: {value}" for name, value in _ratios(sdk, lp)),
        "",
        f"reservations: sdk {sdk.reserve_s:.1f} s, livepay {lp.reserve_s:.1f} s; "
        f"closes: sdk {sdk.close_s:.1f} s, livepay {lp.close_s:.1f} s",
        f"{_model_cpu(sdk, lp)} (not counted above)",
    ]
    for p in (sdk, lp):
        for n in p.notes:
            out.append(f"note ({p.name}): {n}")
    out.append(f"total wall time: {wall:.1f} s")
    return "\n".join(out)


def markdown_report(args: argparse.Namespace, sdk: Phase, lp: Phase, wall: float) -> str:
    today = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    header = [c[1] for c in COLUMNS]
    rows = _rows([sdk, lp])
    out = [
        f"Generated by `{_command(args)} --markdown` on {today} ({_environment()}); "
        f"total wall time {wall:.0f} s. CPU is the benchmark process's only; each model ran in a "
        f"child process of its own ({_model_cpu(sdk, lp)}, not counted).",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        "| ratio | value |",
        "| --- | ---: |",
        *(f"| {name} | {value} |" for name, value in _ratios(sdk, lp)),
    ]
    notes = [f"{p.name}: {n}" for p in (sdk, lp) for n in p.notes]
    if notes:
        out += ["", *(f"- note: {n}" for n in notes)]
    return "\n".join(out)


def _marked(path: Path) -> tuple[str, re.Pattern[str]]:
    """The file's text and the pattern of its marked block; exits with a message if it has none."""
    try:
        text = path.read_text()
    except OSError as e:
        raise SystemExit(f"{path}: cannot read it ({e.strerror or e}); nothing written")
    # Each marker on a line of its own, so that markers quoted in the text are not taken.
    pattern = re.compile(r"^[ \t]*" + re.escape(BEGIN) + r"[ \t]*\n.*?^[ \t]*" + re.escape(END) + r"[ \t]*$", re.S | re.M)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no line {BEGIN} followed by a line {END}; nothing written")
    return text, pattern


def update_readme(path: Path, markdown: str) -> None:
    text, pattern = _marked(path)
    path.write_text(pattern.sub(lambda _: f"{BEGIN}\n{markdown}\n{END}", text, count=1))


async def main_async(args: argparse.Namespace) -> tuple[Phase, Phase]:
    sdk = await run_sdk(args)
    lp = await run_livepay(args)
    return sdk, lp


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=50, help="sessions per client (default 50)")
    p.add_argument("--seconds", type=float, default=40.0, help="funding window per phase, seconds (default 40)")
    p.add_argument("--ticket-seconds", type=float, default=2.5, help="seconds of session one ticket buys in the model (default 2.5)")
    p.add_argument("--seed", type=int, default=1, help="the model's seed (default 1)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README) instead of the text table")
    p.add_argument("--update-readme", action="store_true",
                   help=f"also write the Markdown table between the markers {BEGIN} and {END} of the --readme file")
    p.add_argument("--readme", type=Path, default=None, metavar="PATH",
                   help="the file --update-readme writes into (default bench/README.md); it must hold the markers")
    args = p.parse_args(argv)
    if args.sessions < 1 or args.seconds <= 0:
        p.error("--sessions must be >= 1 and --seconds > 0")
    if args.readme is not None and not args.update_readme:
        p.error("--readme only makes sense with --update-readme")
    if args.readme is None:
        args.readme = README
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.update_readme:
        _marked(args.readme)  # fail now, not after the run, if the file cannot take the table
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    t = time.monotonic()
    sdk, lp = asyncio.run(main_async(args))
    wall = time.monotonic() - t
    md = markdown_report(args, sdk, lp, wall)
    print(md if args.markdown else text_report(args, sdk, lp, wall))
    if args.update_readme:
        update_readme(args.readme, md)
        print(f"\nwrote the table into {args.readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

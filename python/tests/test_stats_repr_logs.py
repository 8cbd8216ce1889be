"""What a session shows of itself: ``stats()``, ``repr()``, events and log records, and that
none of it holds a secret (signer credentials, signer state, payment params).

The log checks run in a fresh interpreter: the native module caches Python loggers and their
levels on first use (pyo3-log ``Caching::LoggersAndLevels``), so in this process the levels in
force when an earlier test first logged would decide what a later test can capture.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from conftest import EventLog, adopt_by_hand, reserve_by_hand

import livepay

SECRET = "sk-livepay-test-7c1e2d9f0a"
HEADERS = {"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET}

# stats() documents "payments sent and accepted, 482 skips, failures, refreshes...", events()
# documents stats()["events_dropped"].
DOCUMENTED_STATS = {"payments_sent", "payments_accepted", "cycles_skipped", "failures", "refreshes", "events_dropped"}


async def test_stats_has_the_documented_keys(sim, closer):
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url, signer_headers=HEADERS)
    closer.append(s)
    before = s.stats()
    log = EventLog(s)
    await log.wait_count("payment_accepted")

    stats = s.stats()

    assert DOCUMENTED_STATS <= set(stats), f"missing: {DOCUMENTED_STATS - set(stats)}"
    assert set(before) == set(stats)
    for key, value in stats.items():
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
        assert value >= 0, (key, value)
    assert before["payments_accepted"] == 0
    assert stats["payments_accepted"] == log.count("payment_accepted") == 1
    assert stats["payments_sent"] >= stats["payments_accepted"]
    assert stats["cycles_skipped"] == log.count("cycle_skipped")
    assert stats["events_dropped"] == 0
    assert s.stats() is not s.stats(), "stats() hands out a shared dict"
    await s.aclose()
    assert s.stats()["payments_accepted"] >= 1, "the counters were lost at the release"


async def test_repr_has_no_secret(sim, closer):
    reserved = await reserve_by_hand(sim)
    state_text = json.dumps(reserved["state"])
    sessions = [
        await livepay.reserve(sim.runner_url, signer_url=sim.signer_url, signer_headers=HEADERS),
        adopt_by_hand(reserved, sim.signer_url, signer_headers=HEADERS),
    ]
    closer.extend(sessions)
    logs = [EventLog(s) for s in sessions]
    await logs[0].wait_count("payment_accepted")
    await logs[1].wait_count("payment_accepted")
    handoff = await sessions[0].stop_payments()

    secrets = [SECRET, reserved["challenge"]["payment_params"], *reserved["state"].values()]
    secrets += [handoff["snapshot"]["payment"]["signer_state"], handoff["snapshot"]["payment"]["payment_params"]]
    for s in sessions:
        shown = [repr(s), str(s), repr(s.stats()), json.dumps([*logs[0].events, *logs[1].events])]
        for text in shown:
            for secret in secrets:
                assert secret not in text, f"{secret[:12]}... shown in {text[:80]!r}"
        assert re.fullmatch(r"<livepay\.Session \S+ (funding|released|handed off|adopting)>", repr(s)), repr(s)
    assert state_text not in repr(sessions[1])
    # What stop_payments() hands out holds the signer state (it is the handoff), but never the
    # signer headers: they go only where the adopter says.
    assert SECRET not in json.dumps(handoff)


LOG_SCRIPT = r"""
import asyncio, json, logging, sys
sys.path.insert(0, TESTS)

records = []

class Keep(logging.Handler):
    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        records.append({"name": record.name, "level": record.levelno, "text": text,
                        "args": repr(record.args), "path": record.pathname,
                        "exc": logging.Formatter().formatException(record.exc_info) if record.exc_info else ""})

PHASES

import livepay
from livepay.testing import SimulatedOrchestrator
from conftest import EventLog, adopt_by_hand, reserve_by_hand

SECRET = SECRET_VALUE
HEADERS = {"Authorization": "Bearer " + SECRET, "X-Api-Key": SECRET}

async def handed_off(sim):
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url, signer_headers=HEADERS)
    await EventLog(s).wait_count("payment_accepted")
    handoff = await s.stop_payments()
    again = livepay.adopt_snapshot(handoff, signer_url=sim.signer_url, signer_headers=HEADERS)
    await EventLog(again).wait_count("payment_accepted")
    await again.aclose()

async def adopted_and_released(sim, reserved):
    adopted = adopt_by_hand(reserved, sim.signer_url, signer_headers=HEADERS)
    await EventLog(adopted).wait_count("payment_accepted")
    sim.release(adopted.session_id)
    await asyncio.wait_for(adopted.wait_released(), 15)

async def failures(sim, reserved):
    for bad in ({"X-Api-Key": SECRET + "\r\n"}, {"Bad " + SECRET: "x"}):
        try:
            await livepay.reserve(sim.runner_url, signer_url=sim.signer_url, signer_headers=bad)
        except livepay.Error as e:
            logging.getLogger("probe").debug("error text %s", e)
    try:
        await livepay.reserve(sim.runner_url, signer_url="http://127.0.0.1:1", signer_headers=HEADERS)
    except livepay.Error as e:
        logging.getLogger("probe").debug("error text %s", e)
    unreachable = adopt_by_hand(reserved, "http://127.0.0.1:1", signer_headers=HEADERS)
    await asyncio.wait_for(unreachable.wait_released(), 20)

async def sessions(sim):
    reserved = await reserve_by_hand(sim)
    await asyncio.gather(handed_off(sim), adopted_and_released(sim, reserved), failures(sim, reserved))

async def main():
    async with SimulatedOrchestrator(profile=PROFILE) as sim:
        await RUN(sim)

asyncio.run(main())
print(json.dumps(records))
"""


def run_logged(tmp_path: Path, phases: str, run: str = "sessions") -> list[dict]:
    """Runs LOG_SCRIPT in a fresh interpreter (outside the source tree, so that the installed
    wheel is imported); its log records. The model fails 30 % of the payments and every stop, so
    that failure paths log too."""
    plan = tmp_path / "faults.toml"
    plan.write_text('name = "log-faults"\n[payment]\nerror_5xx = 0.3\n[stop]\nerror_5xx = 1.0\n')
    script = (
        LOG_SCRIPT.replace("TESTS", repr(str(Path(__file__).parent)))
        .replace("SECRET_VALUE", repr(SECRET))
        .replace("PHASES", textwrap.dedent(phases))
        .replace("RUN", run)
        .replace("PROFILE", repr(str(plan)))
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode in (-6, 134) and lines and lines[-1].startswith("["):
        # The run finished and printed its records, then the interpreter aborted on the way
        # out: a known livepay bug (a tokio worker resolving an asyncio future during
        # finalization), reported apart; the records are still the ones to judge.
        warnings.warn(f"the logging interpreter aborted at exit (status {done.returncode})", RuntimeWarning)
    else:
        assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(lines[-1])


def native(records: list[dict]) -> list[dict]:
    """Records emitted by the Rust side (pyo3-log names the Rust source file)."""
    return [r for r in records if r["path"].endswith(".rs")]


@pytest.fixture(scope="module")
def debug_records(tmp_path_factory) -> list[dict]:
    """Every record of a fresh interpreter logging at DEBUG from the start: the root logger and
    the ``livepay`` logger, as ``caplog.set_level(logging.DEBUG, logger="livepay")`` would."""
    return run_logged(
        tmp_path_factory.mktemp("logs"),
        """
        logging.getLogger().addHandler(Keep())
        logging.getLogger().setLevel(logging.DEBUG)
        logging.getLogger("livepay").setLevel(logging.DEBUG)
        """,
    )


def test_signer_headers_never_appear_in_log_records(debug_records):
    assert len(native(debug_records)) > 20, "too few records from livepay to judge"
    leaks = [r for r in debug_records if SECRET in r["text"] + r["args"] + r["exc"]]
    assert leaks == [], f"{len(leaks)} records hold a signer credential, e.g. {leaks[0]}"


def test_log_records_go_to_the_livepay_logger(debug_records):
    # The package's docstring: "Log records go to the standard logging module, logger livepay".
    mine = [r for r in debug_records if r["name"] == "livepay" or r["name"].startswith("livepay.")]
    names = sorted({r["name"] for r in native(debug_records)})
    assert mine, f"no record under the `livepay` logger; the native records went to {names}"


def test_a_log_level_raised_at_run_time_takes_effect(tmp_path):
    # Logging at INFO, one session; then DEBUG, another: the second's DEBUG records must show.
    records = run_logged(
        tmp_path,
        """
        logging.getLogger().addHandler(Keep())
        logging.getLogger().setLevel(logging.INFO)

        async def twice(sim):
            s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
            await s.aclose()
            records.append({"name": "-", "level": 0, "text": "MARK", "args": "", "path": "", "exc": ""})
            logging.getLogger().setLevel(logging.DEBUG)
            livepay.reset_log_levels()  # livepay caches levels; documented
            s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
            await EventLog(s).wait_count("payment_accepted")
            await s.aclose()
        """,
        run="twice",
    )
    mark = next(i for i, r in enumerate(records) if r["text"] == "MARK")
    debug_after = [r for r in native(records[mark:]) if r["level"] == 10]
    assert debug_after, "DEBUG records of livepay never show once the level was raised at run time"

"""The seed pull request's own cases, against the served model:

- an unpriced (offchain) session is a no-op;
- the first payment comes before the first debit;
- a transient payment error is survived;
- a skip cycle (482) counts as paid up;
- start is idempotent;
- starting without a running event loop warns instead of raising;
- aclose stops;
- the async context manager starts and stops funding.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import warnings

import pytest
from conftest import EventLog, FaultProxy, adopt_by_hand, fault_plan, reserve_by_hand, session_state

import livepay
from livepay.testing import SimulatedOrchestrator

# ---------------------------------------------------------------------------------------------
# Unpriced sessions


def test_unpriced_session_on_the_served_model():
    pytest.skip(
        "the served model cannot serve an unpriced runner: livepay.testing.SimulatedOrchestrator "
        "prices every runner at 1 gwei/s (python/src/testing.rs) and has no pricing argument; "
        "the tests below use a stub runner that answers the reservation 200 at once instead"
    )


class FreeRunner:
    """A stub runner that answers its reservation 200 at once, as an unpriced (offchain)
    go-livepeer runner does, and its stop 204; everything else is forwarded to the model."""

    SESSION = "freesess"

    def __init__(self, sim: SimulatedOrchestrator) -> None:
        self.proxy = FaultProxy(sim.url, self.rule)

    def rule(self, method: str, path: str):
        base = f"{self.proxy.url}/apps/free-runner/session/{self.SESSION}"
        if method == "POST" and path == "/apps/free-runner/session":
            return 200, json.dumps({"session_id": self.SESSION, "control_url": base, "app_url": f"{base}/app"})
        if method == "POST" and path == f"/apps/free-runner/session/{self.SESSION}/stop":
            return 204, ""
        return None

    @property
    def runner_url(self) -> str:
        return f"{self.proxy.url}/apps/free-runner/session"

    async def __aenter__(self) -> FreeRunner:
        await self.proxy.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.proxy.__aexit__(*exc)


async def test_unpriced_session_pays_nothing(sim, closer):
    async with FreeRunner(sim) as runner:
        s = await livepay.reserve(runner.runner_url, signer_url=sim.signer_url)
        closer.append(s)
        assert s.session_id == FreeRunner.SESSION

        await asyncio.sleep(4)  # The duration is the point: more than a payment cycle.

        assert sim.state()["signer_calls"] == 0
        assert runner.proxy.count("POST", "/payment") == 0
        assert s.stats()["payments_sent"] == 0
        assert s.spend_wei in (None, 0)
        assert s.start_payments() is None


@pytest.mark.xfail(
    strict=True,
    reason="known gap (issue 18 note): an unpriced session's engine leaves the funder at once "
    "(Exit::Stopped), so the package reads it as handed off: no funding_not_required event, and "
    "aclose() sends no stop",
)
async def test_unpriced_session_reports_funding_not_required(sim, closer):
    async with FreeRunner(sim) as runner:
        s = await livepay.reserve(runner.runner_url, signer_url=sim.signer_url)
        closer.append(s)
        log = EventLog(s)
        try:
            await log.wait_count("funding_not_required", timeout=5)
        finally:
            await log.cancel()
        assert log.of("funding_not_required")[0]["why"] == "offchain"
        assert "funding" not in repr(s), repr(s)


@pytest.mark.xfail(
    strict=True,
    reason="known gap (issue 18 note): an unpriced session's engine leaves the funder at once "
    "(Exit::Stopped), so the package reads it as handed off: no funding_not_required event, and "
    "aclose() sends no stop",
)
async def test_unpriced_session_aclose_stops_it_on_the_orchestrator(sim, closer):
    # The SDK's aclose() POSTs {control_url}/stop whether or not the session was paid: the
    # runner is reserved either way.
    async with FreeRunner(sim) as runner:
        s = await livepay.reserve(runner.runner_url, signer_url=sim.signer_url)
        closer.append(s)
        await asyncio.sleep(0.5)

        reason = await asyncio.wait_for(s.aclose(), 10)

        assert runner.proxy.count("POST", f"/{FreeRunner.SESSION}/stop") == 1, (
            f"aclose() returned {reason!r} and sent no stop: the runner stays reserved"
        )
        assert reason == "closed by the client"
        assert s.released


# ---------------------------------------------------------------------------------------------
# The first payment


async def test_first_payment_comes_before_the_first_debit(sim, closer):
    # The model debits every 5 s from the reservation. Ten sessions: the first payment's
    # instant is drawn per session (spread over one interval).
    async def one() -> float:
        started = time.monotonic()
        s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
        closer.append(s)
        log = EventLog(s)
        await log.wait_count("payment_accepted", timeout=10)
        elapsed = time.monotonic() - started
        model = session_state(sim, s.session_id)
        assert model["release"] is None
        assert model["payments"] == 2, model  # the reservation's and this one
        await log.cancel()
        return elapsed

    delays = await asyncio.gather(*(one() for _ in range(10)))

    assert max(delays) < 5.0, f"first payments after {sorted(delays)} s"
    state = sim.state()
    assert state["released_unpaid"] == 0 and state["released_restart"] == 0


# ---------------------------------------------------------------------------------------------
# Failures and skips


async def test_transient_payment_error_is_survived(tmp_path, closer):
    plan = fault_plan(tmp_path, "half-503", "[payment]\nerror_5xx = 0.5\n")
    async with SimulatedOrchestrator(profile=plan) as sim:
        s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
        closer.append(s)
        log = EventLog(s)

        await log.wait_count("payment_failed")
        failed_at = log.types().index("payment_failed")
        await log.wait_for(lambda l: "payment_accepted" in l.types()[failed_at:])

        assert log.of("payment_failed")[0]["reply"] == "HTTP 503"
        assert not s.released
        assert session_state(sim, s.session_id)["active"]
        assert sim.state()["released_unpaid"] == 0
        assert await s.aclose() == "closed by the client"


async def test_skip_cycle_counts_as_paid_up(closer):
    # 60 s tickets: after the first payment the signer answers 482 (balance current) for a
    # minute. While 482s flow, the session is paid up: no at_risk, no lapse.
    async with SimulatedOrchestrator(ticket_seconds=60) as sim:
        s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
        closer.append(s)
        log = EventLog(s)

        await log.wait_count("cycle_skipped", 3)

        assert "at_risk" not in log.types() and "lapsed" not in log.types(), log.events
        stats = s.stats()
        assert stats["at_risk"] == 0 and stats["lapses"] == 0
        assert stats["cycles_skipped"] >= 3
        assert s.runway > 5.0, "a 482 did not count as paid up"
        assert sim.state()["signer_482"] >= 3
        assert session_state(sim, s.session_id)["release"] is None
        assert await s.aclose() == "closed by the client"


# ---------------------------------------------------------------------------------------------
# Starting


async def test_start_is_idempotent(sim, closer):
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
    closer.append(s)
    log = EventLog(s)
    for _ in range(100):
        s.start_payments()

    await log.wait_count("payment_accepted")
    s.start_payments()

    assert log.count("payment_accepted") == 1
    assert session_state(sim, s.session_id)["payments"] == 2
    assert sim.state()["signer_calls"] == 2
    assert await s.aclose() == "closed by the client"


class LoopThread:
    """An asyncio loop on another thread, so that the test's own thread has none running."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def test_start_without_a_running_loop_warns_instead_of_raising():
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    other = LoopThread()
    sim = SimulatedOrchestrator()
    try:
        other.run(sim.start())
        reserved = other.run(reserve_by_hand(sim))

        with pytest.warns(RuntimeWarning, match="without a running asyncio event loop"):
            s = adopt_by_hand(reserved, sim.signer_url)

        # Funding runs on livepay's own threads all the same: the model is paid.
        deadline = time.monotonic() + 10
        while session_state(sim, s.session_id)["payments"] < 2:
            assert time.monotonic() < deadline, "no payment without a loop"
            time.sleep(0.1)

        async def close():
            return await s.aclose()

        assert other.run(close()) == "closed by the client"
        assert session_state(sim, s.session_id)["release"] == "Stopped"
    finally:
        other.run(sim.stop())
        other.close()


async def test_no_warning_inside_a_running_loop(sim, closer):
    reserved = await reserve_by_hand(sim)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = adopt_by_hand(reserved, sim.signer_url)
    closer.append(s)
    await s.aclose()


# ---------------------------------------------------------------------------------------------
# Stopping


async def test_aclose_stops(sim):
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
    calls = sim.state()["signer_calls"]

    assert await s.aclose() == "closed by the client"

    await asyncio.sleep(3.5)  # The duration is the point: past the first payment's instant.
    assert sim.state()["signer_calls"] == calls, "a closed session paid"
    model = session_state(sim, s.session_id)
    assert model["release"] == "Stopped" and model["payments"] == 1


async def test_async_context_manager_starts_and_stops_funding(sim):
    async with await livepay.reserve(sim.runner_url, signer_url=sim.signer_url) as s:
        log = EventLog(s)
        await log.wait_count("payment_accepted")
        assert not s.released and s.runway > 0
    calls = sim.state()["signer_calls"]

    assert s.released and s.release_reason == "closed by the client"
    await log.finished()
    assert log.events[-1] == {"type": "released", "reason": "closed by the client"}
    assert session_state(sim, s.session_id)["release"] == "Stopped"
    await asyncio.sleep(3.5)  # The duration is the point: a whole cycle with no payment.
    assert sim.state()["signer_calls"] == calls
